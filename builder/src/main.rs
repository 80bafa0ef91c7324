//! The `vzbuild` command: pack, build, list, inspect, verify and unpack
//! OpenVZ templates stored as OCI image archives.

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use vzbuild::recipe::Recipe;
use vzbuild::{
    Compression, Error, ErrorKind, Output, PackOptions, Profile, TemplateArchive, TemplateCache,
};

#[derive(Parser)]
#[command(
    name = "vzbuild",
    version,
    about = "Versioned, reproducible OCI OS templates for OpenVZ-style containers"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Clone)]
struct CacheArg {
    /// Template cache directory.
    #[arg(long = "cache-dir", env = "VZBUILD_CACHE_DIR", default_value = vzbuild::DEFAULT_CACHE_DIR)]
    cache_dir: PathBuf,
}

#[derive(Args)]
struct PackArgs {
    /// Write the template to this file instead of the template cache.
    #[arg(short = 'o', long)]
    output: Option<PathBuf>,
    #[command(flatten)]
    cache: CacheArg,
    /// Template name (default: <distro>-<version>-<arch>[-<flavour>] from the root).
    #[arg(long)]
    name: Option<String>,
    /// Template version (default: YYYYMMDD of the creation time).
    #[arg(long = "version", id = "tversion")]
    tversion: Option<String>,
    /// Flavour appended to the default name (e.g. minimal, systemd).
    #[arg(long)]
    flavour: Option<String>,
    /// Architecture (x86_64, x86, aarch64...) when it cannot be detected.
    #[arg(long)]
    arch: Option<String>,
    /// Value of org.opencontainers.image.source.
    #[arg(long)]
    source: Option<String>,
    /// Compress the layer with zstd instead of gzip.
    #[arg(long)]
    zstd: bool,
    /// Compression level (gzip 1-12, default 6; zstd 1-19, default 3).
    #[arg(long)]
    level: Option<i32>,
    /// Compression threads (default: all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Keep the tree as it is (no template profile cleaning).
    #[arg(long)]
    keep_all: bool,
    /// Replace an existing template with the same name and version.
    #[arg(long)]
    force: bool,
    /// Extra manifest annotation KEY=VALUE (repeatable).
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    annotations: Vec<String>,
    /// Creation time and mtime clamp, in seconds since the epoch.
    #[arg(long, env = "SOURCE_DATE_EPOCH")]
    source_date_epoch: Option<i64>,
    /// Print only the template path.
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Subcommand)]
enum Cmd {
    /// Pack a root directory into a template.
    Pack {
        /// The bootstrapped root directory.
        root: PathBuf,
        #[command(flatten)]
        pack: PackArgs,
    },
    /// Bootstrap a root from a recipe, run its post steps, and pack it.
    Build {
        /// A recipe file (templates/*.recipe).
        recipe: PathBuf,
        /// Recipe parameter NAME=VALUE (repeatable).
        #[arg(long = "param", value_name = "NAME=VALUE")]
        params: Vec<String>,
        /// Directory for the temporary root (default: $TMPDIR or /var/tmp).
        #[arg(long)]
        workdir: Option<PathBuf>,
        #[command(flatten)]
        pack: PackArgs,
    },
    /// Bootstrap a root from a recipe and run its post steps, without packing.
    Bootstrap {
        recipe: PathBuf,
        /// Where to create the root (must not exist).
        dir: PathBuf,
        #[arg(long = "param", value_name = "NAME=VALUE")]
        params: Vec<String>,
    },
    /// List the templates in the cache.
    List {
        #[command(flatten)]
        cache: CacheArg,
        /// JSON output (one array).
        #[arg(long)]
        json: bool,
    },
    /// Show a template's metadata as JSON.
    Inspect {
        /// A template file, or NAME[:VERSION] in the cache.
        template: String,
        #[command(flatten)]
        cache: CacheArg,
    },
    /// Check every digest, size and media type of templates.
    Verify {
        /// Template files or NAME[:VERSION] (default: every template in the cache).
        templates: Vec<String>,
        #[command(flatten)]
        cache: CacheArg,
    },
    /// Unpack a template into a new directory (atomically, all metadata).
    Unpack {
        /// A template file, or NAME[:VERSION] in the cache.
        template: String,
        /// Target directory (must not exist, or be empty).
        dir: PathBuf,
        #[command(flatten)]
        cache: CacheArg,
    },
    /// Print the file a NAME[:VERSION] resolves to.
    Resolve {
        spec: String,
        #[command(flatten)]
        cache: CacheArg,
    },
}

fn parse_kv(items: &[String], what: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let mut m = BTreeMap::new();
    for it in items {
        let (k, v) = it
            .split_once('=')
            .with_context(|| format!("{what} {it:?} is not NAME=VALUE"))?;
        m.insert(k.to_string(), v.to_string());
    }
    Ok(m)
}

fn pack_options(a: &PackArgs) -> anyhow::Result<(PackOptions, Output)> {
    let compression = if a.zstd {
        let l = a.level.unwrap_or(3);
        anyhow::ensure!((1..=19).contains(&l), "zstd level must be 1..=19");
        Compression::Zstd(l)
    } else {
        let l = a.level.unwrap_or(6);
        anyhow::ensure!((1..=12).contains(&l), "gzip level must be 1..=12");
        Compression::Gzip(l)
    };
    let opts = PackOptions {
        name: a.name.clone(),
        version: a.tversion.clone(),
        flavour: a.flavour.clone(),
        arch: a.arch.clone(),
        source: a.source.clone(),
        compression,
        threads: a.threads,
        source_date_epoch: a.source_date_epoch,
        profile: if a.keep_all {
            Profile::KeepAll
        } else {
            Profile::Template
        },
        force: a.force,
        progress: if a.quiet { Some(false) } else { None },
        annotations: parse_kv(&a.annotations, "--annotation")?,
    };
    let out = match &a.output {
        Some(p) => Output::File(p.clone()),
        None => Output::Cache(a.cache.cache_dir.clone()),
    };
    Ok((opts, out))
}

fn report_packed(p: &vzbuild::Packed, quiet: bool) {
    if quiet {
        println!("{}", p.path.display());
        return;
    }
    for (path, what) in &p.cleaned {
        eprintln!("profile: {what}: {path}");
    }
    println!("template  {}", p.path.display());
    println!("name      {}", p.name);
    println!("version   {}", p.version);
    println!("manifest  sha256:{}", p.manifest_digest);
    println!(
        "layer     sha256:{} ({} bytes)",
        p.layer.digest, p.layer.compressed_size
    );
    println!(
        "diff_id   sha256:{} ({} bytes)",
        p.layer.diff_id, p.layer.uncompressed_size
    );
    println!(
        "entries   {} ({} cleaned by profile, {} skipped)",
        p.entries,
        p.cleaned.len(),
        p.skipped.len()
    );
}

/// A template argument: an existing file path, or NAME[:VERSION] in the cache.
fn locate(spec: &str, cache: &CacheArg) -> vzbuild::Result<PathBuf> {
    let p = Path::new(spec);
    if spec.contains('/') || p.is_file() {
        if !p.exists() {
            return Err(Error::NotFound(spec.to_string()));
        }
        return Ok(p.to_path_buf());
    }
    Ok(TemplateCache::new(&cache.cache_dir).resolve(spec)?.path)
}

fn inspect_json(ar: &TemplateArchive) -> serde_json::Value {
    serde_json::json!({
        "path": ar.path,
        "name": ar.annotations.get("org.opencontainers.image.title"),
        "version": ar.version(),
        "created": ar.annotations.get("org.opencontainers.image.created"),
        "size": ar.file_size,
        "digest": ar.manifest_digest,
        "architecture": ar.config.architecture().to_string(),
        "os": ar.config.os().to_string(),
        "layer": {
            "mediaType": ar.layer_media_type,
            "digest": format!("sha256:{}", ar.layer_digest),
            "size": ar.layer_size,
            "diff_id": format!("sha256:{}", ar.diff_id),
        },
        "annotations": ar.annotations,
    })
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Cmd::Pack { root, pack } => {
            let (opts, out) = pack_options(&pack)?;
            let p = vzbuild::pack(&root, &out, &opts)?;
            report_packed(&p, pack.quiet);
        }
        Cmd::Build {
            recipe,
            params,
            workdir,
            pack,
        } => {
            let recipe = Recipe::load(&recipe, &parse_kv(&params, "--param")?)?;
            let (mut opts, out) = pack_options(&pack)?;
            opts.name = opts.name.or(recipe.name.clone());
            opts.version = opts.version.or(recipe.version.clone());
            opts.flavour = opts.flavour.or(recipe.flavour.clone());
            opts.arch = opts.arch.or(recipe.arch.clone());
            opts.source = opts.source.or(Some(recipe.source()));
            let base = workdir.unwrap_or_else(|| {
                std::env::var_os("TMPDIR")
                    .map(PathBuf::from)
                    .unwrap_or("/var/tmp".into())
            });
            let tmp = tempfile::Builder::new()
                .prefix("vzbuild-build.")
                .tempdir_in(&base)
                .with_context(|| format!("creating a work directory in {}", base.display()))?;
            let root = tmp.path().join("root");
            recipe.bootstrap(&root, !pack.quiet && vzbuild::progress::wanted(None))?;
            let p = vzbuild::pack(&root, &out, &opts)?;
            report_packed(&p, pack.quiet);
        }
        Cmd::Bootstrap {
            recipe,
            dir,
            params,
        } => {
            let recipe = Recipe::load(&recipe, &parse_kv(&params, "--param")?)?;
            if let Err(e) = recipe.bootstrap(&dir, vzbuild::progress::wanted(None)) {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e.into());
            }
        }
        Cmd::List { cache, json } => {
            let c = TemplateCache::new(&cache.cache_dir);
            let mut rows = Vec::new();
            for t in c.list()? {
                match TemplateArchive::open(&t.path) {
                    Ok(ar) => rows.push((t, Some(ar))),
                    Err(e) => {
                        eprintln!("vzbuild: warning: {e}");
                        rows.push((t, None));
                    }
                }
            }
            if json {
                let v: Vec<_> = rows
                    .iter()
                    .map(|(t, ar)| match ar {
                        Some(ar) => inspect_json(ar),
                        None => serde_json::json!({"path": t.path, "name": t.name, "version": t.version, "error": "unreadable"}),
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!(
                    "{:<36} {:<16} {:<20} {:>10}  DIGEST",
                    "NAME", "VERSION", "CREATED", "SIZE"
                );
                for (t, ar) in rows {
                    let (created, size, digest) = match &ar {
                        Some(ar) => (
                            ar.annotations
                                .get("org.opencontainers.image.created")
                                .cloned()
                                .unwrap_or_default(),
                            human(ar.file_size),
                            ar.manifest_digest.chars().take(19).collect::<String>(),
                        ),
                        None => ("-".into(), "-".into(), "CORRUPT".into()),
                    };
                    println!(
                        "{:<36} {:<16} {:<20} {:>10}  {}",
                        t.name, t.version, created, size, digest
                    );
                }
            }
        }
        Cmd::Inspect { template, cache } => {
            let ar = TemplateArchive::open(&locate(&template, &cache)?)?;
            println!("{}", serde_json::to_string_pretty(&inspect_json(&ar))?);
        }
        Cmd::Verify { templates, cache } => {
            let paths: Vec<PathBuf> = if templates.is_empty() {
                TemplateCache::new(&cache.cache_dir)
                    .list()?
                    .into_iter()
                    .map(|t| t.path)
                    .collect()
            } else {
                templates
                    .iter()
                    .map(|t| locate(t, &cache))
                    .collect::<vzbuild::Result<_>>()?
            };
            let mut bad = None;
            for p in paths {
                match vzbuild::verify(&p) {
                    Ok(ar) => println!("ok      {} {}", p.display(), ar.manifest_digest),
                    Err(e) => {
                        println!("FAILED  {}: {e}", p.display());
                        bad.get_or_insert(e);
                    }
                }
            }
            if let Some(e) = bad {
                return Err(e.into());
            }
        }
        Cmd::Unpack {
            template,
            dir,
            cache,
        } => {
            let path = locate(&template, &cache)?;
            let r = vzbuild::unpack(&path, &dir, &vzbuild::UnpackOptions::default())?;
            println!(
                "unpacked {} entries ({} bytes of tar) into {}",
                r.entries,
                r.uncompressed_size,
                r.target.display()
            );
        }
        Cmd::Resolve { spec, cache } => {
            println!(
                "{}",
                TemplateCache::new(&cache.cache_dir)
                    .resolve(&spec)?
                    .path
                    .display()
            );
        }
    }
    Ok(())
}

fn human(b: u64) -> String {
    if b >= 1 << 20 {
        format!("{:.1}M", b as f64 / (1 << 20) as f64)
    } else {
        format!("{:.1}K", b as f64 / 1024.0)
    }
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("vzbuild: error: {e:#}");
        let code = match e.downcast_ref::<Error>().map(Error::kind) {
            Some(ErrorKind::NotFound) => 91,
            Some(ErrorKind::Corrupt) => 3,
            Some(ErrorKind::Invalid) => 2,
            Some(ErrorKind::Io) | None => 1,
        };
        std::process::exit(code);
    }
}
