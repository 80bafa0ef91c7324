//! vzlist: one row per container, with vzlist's fields, columns and JSON shape.

use serde_json::{json, Value};

use super::beancounters::{self, ListResources};
use super::ct::Ct;
use super::ctid::Ctid;
use super::disk::{self, DiskUsage, Limit};
use super::env::VzEnv;
use super::translate;
use crate::cgroups::Layout;

/// What vzlist shows about one container.
#[derive(Debug, Clone)]
pub struct Row {
    pub ctid: Ctid,
    pub status: &'static str,
    pub numproc: usize,
    pub hostname: String,
    pub name: String,
    pub ip: Vec<String>,
    pub private: String,
    pub root: String,
    pub ostemplate: String,
    pub onboot: bool,
    pub nameserver: Vec<String>,
    pub searchdomain: Vec<String>,
    pub disk: DiskUsage,
    /// Beancounters and CPU/I/O settings (see `beancounters::ListResources`).
    pub resources: ListResources,
}

pub fn row(env: &VzEnv, ctid: Ctid) -> Option<Row> {
    let ct = Ct::load(env, ctid).ok()?;
    if !ct.exists {
        return None;
    }
    let status = ct.status(env);
    let words = |key: &str| -> Vec<String> {
        ct.conf
            .get(key)
            .unwrap_or("")
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    Some(Row {
        ctid,
        status: if status.running {
            "running"
        } else if status.mounted {
            "mounted"
        } else {
            "stopped"
        },
        numproc: if status.running {
            Layout::detect().procs(&translate::cgroup_path(ctid)).len()
        } else {
            0
        },
        resources: ListResources::of(env, &ct, status.running),
        hostname: ct.conf.get("HOSTNAME").unwrap_or("").to_string(),
        name: ct.name().unwrap_or("").to_string(),
        ip: words("IP_ADDRESS"),
        private: ct.private(env).display().to_string(),
        root: ct.root(env).display().to_string(),
        ostemplate: ct.conf.get("OSTEMPLATE").unwrap_or("").to_string(),
        onboot: ct.conf.get("ONBOOT") == Some("yes"),
        nameserver: words("NAMESERVER"),
        searchdomain: words("SEARCHDOMAIN"),
        disk: disk::usage(env, &ct),
    })
}

/// The fields `-o` accepts: (name, header, right-aligned).
pub const FIELDS: &[(&str, &str, bool)] = &[
    ("ctid", "CTID", true),
    ("veid", "CTID", true),
    ("numproc", "NPROC", true),
    ("status", "STATUS", false),
    ("ip", "IP_ADDR", false),
    ("hostname", "HOSTNAME", false),
    ("name", "NAME", false),
    ("private", "PRIVATE", false),
    ("root", "ROOT", false),
    ("diskspace", "DQBLOCKS", true),
    ("diskspace.s", "DQBLOCKS.S", true),
    ("diskspace.h", "DQBLOCKS.H", true),
    ("diskinodes", "DQINODES", true),
    ("diskinodes.s", "DQINODES.S", true),
    ("diskinodes.h", "DQINODES.H", true),
    ("ostemplate", "OSTEMPLATE", false),
    ("onboot", "ONBOOT", false),
    ("nameserver", "NAMESERVER", false),
    ("searchdomain", "SEARCHDOMAIN", false),
];

pub const DEFAULT_FIELDS: &[&str] = &["ctid", "numproc", "status", "ip", "hostname"];

fn dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_string()
    }
}

impl Row {
    pub fn field(&self, name: &str) -> Option<String> {
        Some(match name {
            "ctid" | "veid" => self.ctid.to_string(),
            // The beancounter (tasks, as OpenVZ counts) when the cgroup has one.
            "numproc" => match self.resources.field("numproc") {
                Some(held) if self.status == "running" && self.resources.running => held,
                _ if self.status == "running" => self.numproc.to_string(),
                _ => "-".into(),
            },
            "status" => self.status.to_string(),
            "ip" => dash(&self.ip.join(" ")),
            "hostname" => dash(&self.hostname),
            "name" => dash(&self.name),
            "private" => self.private.clone(),
            "root" => self.root.clone(),
            "ostemplate" => dash(&self.ostemplate),
            "onboot" => if self.onboot { "yes" } else { "no" }.into(),
            "nameserver" => dash(&self.nameserver.join(" ")),
            "searchdomain" => dash(&self.searchdomain.join(" ")),
            d if d.starts_with("disk") => disk_field(&self.disk, d)?,
            _ => return self.resources.field(name),
        })
    }

    /// vzlist -j's object for this container.
    pub fn json(&self) -> Value {
        let or_null = |s: &str| if s.is_empty() { Value::Null } else { json!(s) };
        let mut value = json!({
            "ctid": self.ctid.0,
            "private": self.private,
            "root": self.root,
            "hostname": or_null(&self.hostname),
            "name": or_null(&self.name),
            "smart_name": if self.name.is_empty() { self.ctid.to_string() } else { self.name.clone() },
            "ostemplate": or_null(&self.ostemplate),
            "ip": self.ip,
            "nameserver": self.nameserver,
            "searchdomain": self.searchdomain,
            "status": self.status,
            "onboot": self.onboot,
        });
        value["diskspace"] = disk_json(self.disk.space_kb, self.disk.space);
        value["diskinodes"] = disk_json(self.disk.inodes, self.disk.diskinodes);
        // Beancounters as vzlist -j shows them ({held, maxheld, barrier, limit, failcnt}),
        // numproc among them, and the CPU/I/O settings.
        value
            .as_object_mut()
            .expect("row is an object")
            .extend(self.resources.json());
        value
    }
}

/// diskspace (KiB) and diskinodes: usage ("-" when unknown) and limits.
fn disk_field(d: &DiskUsage, name: &str) -> Option<String> {
    let usage = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
    let limit = |l: Option<Limit>| l.map_or("-".to_string(), |l| l.to_string());
    Some(match name {
        "diskspace" => usage(d.space_kb),
        "diskspace.s" => limit(d.space.map(|s| s.soft)),
        "diskspace.h" => limit(d.space.map(|s| s.hard)),
        "diskinodes" => usage(d.inodes),
        "diskinodes.s" => limit(d.diskinodes.map(|s| s.soft)),
        "diskinodes.h" => limit(d.diskinodes.map(|s| s.hard)),
        _ => return None,
    })
}

/// {"usage", "softlimit", "hardlimit"}: null for unknown usage and for no limit.
fn disk_json(usage: Option<u64>, limits: Option<disk::SoftHard>) -> Value {
    let limit = |l: Option<Limit>| l.and_then(Limit::value).map_or(Value::Null, |v| json!(v));
    json!({
        "usage": usage,
        "softlimit": limit(limits.map(|l| l.soft)),
        "hardlimit": limit(limits.map(|l| l.hard)),
    })
}

/// (name, header, right-aligned) of a field: the basic ones, then resources'.
pub fn field_spec(name: &str) -> Option<(String, String, bool)> {
    FIELDS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(n, h, r)| (n.to_string(), h.to_string(), *r))
        .or_else(|| {
            beancounters::list_fields()
                .into_iter()
                .find(|(n, _, _)| n == name)
        })
}

/// Formats rows as vzlist's table: numeric columns right-aligned.
pub fn table(rows: &[Row], fields: &[&str], header: bool) -> Result<String, String> {
    let specs: Vec<(String, String, bool)> = fields
        .iter()
        .map(|f| field_spec(f).ok_or_else(|| format!("unknown field {f:?}")))
        .collect::<Result<_, _>>()?;
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            fields
                .iter()
                .map(|f| r.field(f).unwrap_or_default())
                .collect()
        })
        .collect();
    let widths: Vec<usize> = specs
        .iter()
        .enumerate()
        .map(|(i, (_, h, _))| {
            cells
                .iter()
                .map(|c| c[i].len())
                .chain([h.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |values: Vec<&str>| -> String {
        let parts: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                if specs[i].2 {
                    format!("{v:>w$}", w = widths[i])
                } else {
                    format!("{v:<w$}", w = widths[i])
                }
            })
            .collect();
        parts.join(" ").trim_end().to_string() + "\n"
    };
    let mut out = String::new();
    if header {
        out.push_str(&line(specs.iter().map(|s| s.1.as_str()).collect()));
    }
    for c in &cells {
        out.push_str(&line(c.iter().map(String::as_str).collect()));
    }
    Ok(out)
}

/// Sorts by a field (`-s`): numbers numerically, text alphabetically; `-field` reverses.
pub fn sort(rows: &mut [Row], key: &str) -> Result<(), String> {
    let (key, reverse) = match key.strip_prefix('-') {
        Some(k) => (k, true),
        None => (key, false),
    };
    if field_spec(key).is_none() {
        return Err(format!("unknown sort field {key:?}"));
    }
    rows.sort_by(|a, b| {
        let (x, y) = (
            a.field(key).unwrap_or_default(),
            b.field(key).unwrap_or_default(),
        );
        let ord = match (x.parse::<i64>(), y.parse::<i64>()) {
            (Ok(p), Ok(q)) => p.cmp(&q),
            _ => x.cmp(&y),
        };
        if reverse {
            ord.reverse()
        } else {
            ord
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(ctid: u32, status: &'static str, n: usize, host: &str) -> Row {
        Row {
            ctid: Ctid(ctid),
            status,
            numproc: n,
            hostname: host.into(),
            name: String::new(),
            ip: vec![],
            private: format!("/vz/private/{ctid}"),
            root: format!("/vz/root/{ctid}"),
            ostemplate: String::new(),
            onboot: false,
            nameserver: vec![],
            searchdomain: vec![],
            disk: DiskUsage::default(),
            resources: ListResources::default(),
        }
    }

    #[test]
    fn default_table_like_vzlist() {
        let rows = vec![
            sample(101, "running", 12, "ct101.example"),
            sample(1002, "stopped", 0, ""),
        ];
        let t = table(&rows, DEFAULT_FIELDS, true).unwrap();
        assert_eq!(
            t,
            "CTID NPROC STATUS  IP_ADDR HOSTNAME\n 101    12 running -       ct101.example\n1002     - stopped -       -\n"
        );
        assert!(table(&rows, &["bogus"], true).is_err());
    }

    #[test]
    fn sorting_and_json() {
        let mut rows = vec![sample(9, "running", 3, "b"), sample(10, "running", 1, "a")];
        sort(&mut rows, "ctid").unwrap();
        assert_eq!(rows[0].ctid, Ctid(9));
        sort(&mut rows, "-numproc").unwrap();
        assert_eq!(rows[0].ctid, Ctid(9));
        sort(&mut rows, "hostname").unwrap();
        assert_eq!(rows[0].ctid, Ctid(10));
        let j = rows[0].json();
        assert_eq!(j["ctid"], 10);
        assert_eq!(j["status"], "running");
        assert_eq!(j["name"], Value::Null);
    }
}
