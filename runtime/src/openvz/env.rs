//! The host's OpenVZ settings: `vz.conf` in the configuration directory (default
//! /etc/vz, or `$VZCTL_ETC`; tests use a temporary one) and the paths it names.

use std::path::{Path, PathBuf};

use super::config::{expand_ctid, ConfigFile};
use super::ctid::Ctid;
use super::error::{ExitCode, VzError, VzResult};

pub const DEFAULT_ETC: &str = "/etc/vz";
pub const ETC_ENV: &str = "VZCTL_ETC";

/// vz.conf defaults, as OpenVZ installs them.
const DEFAULTS: &[(&str, &str)] = &[
    ("VE_ROOT", "/vz/root/$VEID"),
    ("VE_PRIVATE", "/vz/private/$VEID"),
    ("TEMPLATE", "/vz/template"),
    ("LOCKDIR", "/vz/lock"),
    ("DUMPDIR", "/vz/dump"),
    ("VE_LAYOUT", "simfs"),
    // vzrun's own: where the runtime keeps the containers' state and bundles.
    ("VZRUN_ROOT", "/run/vzctl"),
    ("STOP_TIMEOUT", "120"),
];

#[derive(Debug, Clone)]
pub struct VzEnv {
    pub etc: PathBuf,
    pub global: ConfigFile,
}

impl VzEnv {
    /// Loads `<etc>/vz.conf` (missing file: OpenVZ's defaults).
    pub fn load(etc: &Path) -> VzResult<Self> {
        let path = etc.join("vz.conf");
        let global = if path.exists() {
            ConfigFile::load(&path)
                .map_err(|e| VzError::new(ExitCode::NoGlobalConfig, e.to_string()))?
        } else {
            ConfigFile::default()
        };
        Ok(Self {
            etc: etc.to_path_buf(),
            global,
        })
    }

    /// The configuration directory from `$VZCTL_ETC`, else /etc/vz.
    pub fn from_environment() -> VzResult<Self> {
        let etc = std::env::var_os(ETC_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_ETC));
        Self::load(&etc)
    }

    /// A global setting, with OpenVZ's default.
    pub fn get(&self, key: &str) -> Option<String> {
        self.global.get(key).map(str::to_string).or_else(|| {
            DEFAULTS
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string())
        })
    }

    fn path(&self, key: &str) -> PathBuf {
        PathBuf::from(self.get(key).unwrap_or_default())
    }

    pub fn conf_dir(&self) -> PathBuf {
        self.etc.join("conf")
    }

    pub fn conf_path(&self, ctid: Ctid) -> PathBuf {
        self.conf_dir().join(format!("{ctid}.conf"))
    }

    pub fn names_dir(&self) -> PathBuf {
        self.etc.join("names")
    }

    pub fn sample_path(&self, sample: &str) -> PathBuf {
        self.conf_dir().join(format!("ve-{sample}.conf-sample"))
    }

    pub fn template_cache(&self) -> PathBuf {
        self.path("TEMPLATE").join("cache")
    }

    pub fn lock_dir(&self) -> PathBuf {
        self.path("LOCKDIR")
    }

    pub fn dump_dir(&self) -> PathBuf {
        self.path("DUMPDIR")
    }

    /// The vzrun state root for CT containers (kept apart from engines' containers).
    pub fn runtime_root(&self) -> PathBuf {
        self.path("VZRUN_ROOT")
    }

    /// Where each container's generated OCI bundle lives.
    pub fn bundle_dir(&self, ctid: Ctid) -> PathBuf {
        self.runtime_root().join("bundles").join(ctid.to_string())
    }

    /// The default VE_ROOT / VE_PRIVATE for a new container ($VEID expanded).
    pub fn default_root(&self, ctid: Ctid) -> PathBuf {
        PathBuf::from(expand_ctid(
            &self.get("VE_ROOT").unwrap_or_default(),
            &ctid.to_string(),
        ))
    }

    pub fn default_private(&self, ctid: Ctid) -> PathBuf {
        PathBuf::from(expand_ctid(
            &self.get("VE_PRIVATE").unwrap_or_default(),
            &ctid.to_string(),
        ))
    }

    pub fn runtime(&self) -> crate::Runtime {
        crate::Runtime::new(self.runtime_root())
    }

    /// Every container that has a config file, sorted.
    pub fn list_ctids(&self) -> Vec<Ctid> {
        let mut ids: Vec<Ctid> = std::fs::read_dir(self.conf_dir())
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| {
                        let name = e.file_name();
                        let name = name.to_str()?;
                        Ctid::parse_number(name.strip_suffix(".conf")?)
                    })
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let etc = tempfile::tempdir().unwrap();
        let env = VzEnv::load(etc.path()).unwrap();
        assert_eq!(env.default_private(Ctid(101)), Path::new("/vz/private/101"));
        assert_eq!(env.template_cache(), Path::new("/vz/template/cache"));
        std::fs::write(
            etc.path().join("vz.conf"),
            "VE_ROOT=/t/root/$VEID\nTEMPLATE=/t/tpl\n",
        )
        .unwrap();
        let env = VzEnv::load(etc.path()).unwrap();
        assert_eq!(env.default_root(Ctid(7)), Path::new("/t/root/7"));
        assert_eq!(env.template_cache(), Path::new("/t/tpl/cache"));
        assert_eq!(env.conf_path(Ctid(7)), etc.path().join("conf/7.conf"));
    }

    #[test]
    fn lists_ctids_from_configs() {
        let etc = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(etc.path().join("conf")).unwrap();
        for f in [
            "102.conf",
            "101.conf",
            "ve-basic.conf-sample",
            "0.conf",
            "x.conf",
        ] {
            std::fs::write(etc.path().join("conf").join(f), "").unwrap();
        }
        let env = VzEnv::load(etc.path()).unwrap();
        assert_eq!(env.list_ctids(), vec![Ctid(101), Ctid(102)]);
    }
}
