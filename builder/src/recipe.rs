//! Template recipes (`templates/*.recipe`): how to bootstrap a root and what
//! to run on it before packing. The format is line based, `key = value`, with
//! `#` comments and `${param}` substitution; see docs/TEMPLATES.md.

use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// How the root is bootstrapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bootstrap {
    Mmdebstrap,
    Debootstrap,
    Dnf,
}

/// A parsed recipe with parameters substituted.
#[derive(Debug, Clone)]
pub struct Recipe {
    pub file: PathBuf,
    /// sha256 of the recipe file (recorded in the template's source).
    pub sha256: String,
    pub bootstrap: Bootstrap,
    pub name: Option<String>,
    pub version: Option<String>,
    pub flavour: Option<String>,
    pub arch: Option<String>,
    pub suite: Option<String>,
    pub variant: String,
    pub include: Vec<String>,
    pub components: Option<String>,
    pub mirror: Option<String>,
    pub repo: Option<String>,
    pub releasever: Option<String>,
    pub packages: Vec<String>,
    pub gpgcheck: bool,
    pub post: Vec<String>,
}

const KEYS: &[&str] = &[
    "bootstrap",
    "name",
    "version",
    "flavour",
    "arch",
    "suite",
    "variant",
    "include",
    "components",
    "mirror",
    "repo",
    "releasever",
    "packages",
    "gpgcheck",
    "post",
];

fn substitute(
    value: &str,
    params: &BTreeMap<String, String>,
    file: &Path,
    line: usize,
) -> Result<String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after.find('}').ok_or_else(|| {
            Error::Invalid(format!(
                "{}:{line}: unterminated ${{ in {value:?}",
                file.display()
            ))
        })?;
        let key = &after[..end];
        let v = params.get(key).ok_or_else(|| {
            Error::Invalid(format!(
                "{}:{line}: the recipe needs parameter {key:?}: give --param {key}=VALUE",
                file.display()
            ))
        })?;
        out.push_str(v);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

impl Recipe {
    /// Reads a recipe; `params` (from `--param`) override `param.NAME` defaults.
    pub fn load(file: &Path, params: &BTreeMap<String, String>) -> Result<Recipe> {
        let text = std::fs::read(file).map_err(|e| Error::io_path("reading recipe", file, e))?;
        let sha256 = {
            use sha2::Digest;
            crate::compress::hex(&sha2::Sha256::digest(&text))
        };
        let text = String::from_utf8(text)
            .map_err(|_| Error::Invalid(format!("{}: recipe is not UTF-8", file.display())))?;
        let mut raw: Vec<(usize, String, String)> = Vec::new();
        let mut all_params = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let (k, v) = t.split_once('=').ok_or_else(|| {
                Error::Invalid(format!(
                    "{}:{n}: expected `key = value`, got {t:?}",
                    file.display()
                ))
            })?;
            let (k, v) = (k.trim(), v.trim());
            if let Some(p) = k.strip_prefix("param.") {
                all_params.insert(p.to_string(), v.to_string());
                continue;
            }
            if !KEYS.contains(&k) {
                return Err(Error::Invalid(format!(
                    "{}:{n}: unknown key {k:?} (known: {})",
                    file.display(),
                    KEYS.join(", ")
                )));
            }
            raw.push((n, k.to_string(), v.to_string()));
        }
        for (k, v) in params {
            all_params.insert(k.clone(), v.clone());
        }
        let mut r = Recipe {
            file: file.to_path_buf(),
            sha256,
            bootstrap: Bootstrap::Mmdebstrap,
            name: None,
            version: None,
            flavour: None,
            arch: None,
            suite: None,
            variant: "minbase".into(),
            include: Vec::new(),
            components: None,
            mirror: None,
            repo: None,
            releasever: None,
            packages: Vec::new(),
            gpgcheck: false,
            post: Vec::new(),
        };
        let mut have_bootstrap = false;
        let list = |v: &str| -> Vec<String> {
            v.split(|c: char| c == ',' || c.is_whitespace())
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        };
        let opt = |v: String| if v.is_empty() { None } else { Some(v) };
        for (n, k, v) in raw {
            let v = substitute(&v, &all_params, file, n)?;
            match k.as_str() {
                "bootstrap" => {
                    have_bootstrap = true;
                    r.bootstrap = match v.as_str() {
                        "mmdebstrap" => Bootstrap::Mmdebstrap,
                        "debootstrap" => Bootstrap::Debootstrap,
                        "dnf" => Bootstrap::Dnf,
                        other => {
                            return Err(Error::Invalid(format!(
                                "{}:{n}: bootstrap must be mmdebstrap, debootstrap or dnf, not {other:?}",
                                file.display()
                            )))
                        }
                    }
                }
                "name" => r.name = opt(v),
                "version" => r.version = opt(v),
                "flavour" => r.flavour = opt(v),
                "arch" => r.arch = opt(v),
                "suite" => r.suite = opt(v),
                "variant" => r.variant = v,
                "include" => r.include.extend(list(&v)),
                "components" => r.components = opt(v),
                "mirror" => r.mirror = opt(v),
                "repo" => r.repo = opt(v),
                "releasever" => r.releasever = opt(v),
                "packages" => r.packages.extend(list(&v)),
                "gpgcheck" => r.gpgcheck = matches!(v.as_str(), "1" | "true" | "yes"),
                "post" => r.post.push(v),
                _ => unreachable!("checked against KEYS"),
            }
        }
        if !have_bootstrap {
            return Err(Error::Invalid(format!(
                "{}: missing `bootstrap = ...`",
                file.display()
            )));
        }
        match r.bootstrap {
            Bootstrap::Mmdebstrap | Bootstrap::Debootstrap if r.suite.is_none() => {
                return Err(Error::Invalid(format!(
                    "{}: missing `suite = ...`",
                    file.display()
                )))
            }
            Bootstrap::Dnf
                if r.repo.is_none() || r.releasever.is_none() || r.packages.is_empty() =>
            {
                return Err(Error::Invalid(format!(
                    "{}: a dnf recipe needs `repo`, `releasever` and `packages`",
                    file.display()
                )))
            }
            _ => {}
        }
        Ok(r)
    }

    /// The `org.opencontainers.image.source` value for templates built from it.
    pub fn source(&self) -> String {
        let f = self
            .file
            .file_name()
            .map(|f| f.to_string_lossy().to_string())
            .unwrap_or_default();
        format!("recipe:{f}@sha256:{}", self.sha256)
    }

    /// Bootstraps into `root` (which must not exist yet) and runs the post
    /// steps. `verbose` lets the tools print their progress.
    pub fn bootstrap(&self, root: &Path, verbose: bool) -> Result<()> {
        if root.exists() {
            return Err(Error::Invalid(format!("{} already exists", root.display())));
        }
        match self.bootstrap {
            Bootstrap::Mmdebstrap => {
                let mut c = Command::new("mmdebstrap");
                c.args(["--mode=root", "--format=directory"]);
                c.arg(format!("--variant={}", self.variant));
                if !self.include.is_empty() {
                    c.arg(format!("--include={}", self.include.join(",")));
                }
                if let Some(comp) = &self.components {
                    c.arg(format!("--components={comp}"));
                }
                if !verbose {
                    c.arg("--quiet");
                }
                c.arg(self.suite.as_deref().unwrap_or_default()).arg(root);
                if let Some(m) = &self.mirror {
                    c.arg(m);
                }
                run(&mut c, "mmdebstrap")?;
            }
            Bootstrap::Debootstrap => {
                let mut c = Command::new("debootstrap");
                c.arg(format!("--variant={}", self.variant));
                if !self.include.is_empty() {
                    c.arg(format!("--include={}", self.include.join(",")));
                }
                if let Some(comp) = &self.components {
                    c.arg(format!("--components={comp}"));
                }
                c.arg(self.suite.as_deref().unwrap_or_default()).arg(root);
                if let Some(m) = &self.mirror {
                    c.arg(m);
                }
                run(&mut c, "debootstrap")?;
            }
            Bootstrap::Dnf => {
                std::fs::create_dir_all(root).map_err(|e| Error::io_path("creating", root, e))?;
                let abs = std::fs::canonicalize(root)
                    .map_err(|e| Error::io_path("resolving", root, e))?;
                // Debian's rpm keeps its database in ~/.rpmdb unless told
                // otherwise: a private HOME with .rpmmacros puts it where
                // RPM distributions expect it, without touching the host's.
                let home = tempfile::Builder::new()
                    .prefix("vzbuild-rpmhome.")
                    .tempdir()
                    .map_err(|e| Error::io("creating a private HOME for rpm", e))?;
                std::fs::write(home.path().join(".rpmmacros"), "%_dbpath /var/lib/rpm\n")
                    .map_err(|e| Error::io("writing .rpmmacros", e))?;
                let mut c = Command::new("dnf");
                c.env("HOME", home.path());
                c.args([
                    "-y",
                    "--setopt=reposdir=/nonexistent",
                    "--setopt=install_weak_deps=0",
                ]);
                if !verbose {
                    c.arg("-q");
                }
                if !self.gpgcheck {
                    c.arg("--nogpgcheck");
                }
                c.arg(format!("--installroot={}", abs.display()));
                c.arg(format!(
                    "--releasever={}",
                    self.releasever.as_deref().unwrap_or_default()
                ));
                c.arg(format!(
                    "--repofrompath=template,{}",
                    self.repo.as_deref().unwrap_or_default()
                ));
                c.args(["--repo=template", "install"]);
                c.args(&self.packages);
                run(&mut c, "dnf")?;
            }
        }
        for (i, step) in self.post.iter().enumerate() {
            let mut c = Command::new("/bin/sh");
            c.args(["-ec", step]).env("ROOT", root).current_dir(root);
            run(&mut c, &format!("post step {} ({step:?})", i + 1))?;
        }
        Ok(())
    }
}

fn run(c: &mut Command, what: &str) -> Result<()> {
    let status = c
        .status()
        .map_err(|e| Error::io(format!("starting {what}"), e))?;
    if !status.success() {
        return Err(Error::Invalid(format!("{what} failed ({status})")));
    }
    Ok(())
}
