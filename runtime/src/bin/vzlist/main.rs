//! `vzlist`: lists OpenVZ containers (vzlist(8) columns, sorting and JSON).

use std::process::ExitCode;

use clap::Parser;

use vzrun::openvz::list::{self, Row};
use vzrun::openvz::{Ctid, VzEnv};

#[derive(Parser, Debug)]
#[command(name = "vzlist", about = "List OpenVZ containers (vzrun)", version)]
struct Cli {
    /// All containers (default: running ones)
    #[arg(short, long)]
    all: bool,
    /// Stopped containers only
    #[arg(short = 'S', long)]
    stopped: bool,
    /// Fields to show, comma separated (ctid,numproc,status,ip,hostname,name,private,...)
    #[arg(short, long)]
    output: Option<String>,
    /// No header
    #[arg(short = 'H', long = "no-header")]
    no_header: bool,
    /// Sort by a field (-FIELD: reversed)
    #[arg(short, long, allow_hyphen_values = true)]
    sort: Option<String>,
    /// Show names instead of hostnames
    #[arg(short, long)]
    name: bool,
    /// JSON output
    #[arg(short, long)]
    json: bool,
    /// List the available fields
    #[arg(short = 'L', long = "list")]
    list_fields: bool,
    /// Only these containers (ids or names)
    ctids: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("vzlist: {message}");
            ExitCode::from(21)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, String> {
    if cli.list_fields {
        for (name, header, _) in list::FIELDS {
            println!("{name:<14}{header}");
        }
        for (name, header, _) in vzrun::openvz::beancounters::list_fields() {
            println!("{name:<14}{header}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let env = VzEnv::from_environment().map_err(|e| e.to_string())?;
    let ctids: Vec<Ctid> = if cli.ctids.is_empty() {
        env.list_ctids()
    } else {
        cli.ctids
            .iter()
            .map(|t| Ctid::resolve(t, &env.etc).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?
    };
    let explicit = !cli.ctids.is_empty();
    let mut rows: Vec<Row> = ctids
        .into_iter()
        .filter_map(|c| list::row(&env, c))
        .filter(|r| {
            if cli.stopped {
                r.status != "running"
            } else {
                cli.all || explicit || r.status == "running"
            }
        })
        .collect();
    if let Some(key) = &cli.sort {
        list::sort(&mut rows, key)?;
    }
    if cli.json {
        let values: Vec<serde_json::Value> = rows.iter().map(Row::json).collect();
        println!("{}", serde_json::to_string_pretty(&values).expect("json"));
        return Ok(ExitCode::SUCCESS);
    }
    let fields: Vec<String> = match &cli.output {
        Some(o) => o.split(',').map(|f| f.trim().to_string()).collect(),
        None => list::DEFAULT_FIELDS
            .iter()
            .map(|f| {
                if cli.name && *f == "hostname" {
                    "name".to_string()
                } else {
                    f.to_string()
                }
            })
            .collect(),
    };
    let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
    if rows.is_empty() && !cli.no_header {
        eprintln!("Container(s) not found");
        return Ok(ExitCode::from(1));
    }
    print!("{}", list::table(&rows, &refs, !cli.no_header)?);
    Ok(ExitCode::SUCCESS)
}
