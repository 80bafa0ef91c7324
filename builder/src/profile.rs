//! The template profile: which host- and instance-specific state is left out
//! of a template. Rules match paths relative to the root (no leading slash).
//! The source tree is never modified: entries are dropped or written empty
//! while packing, and every such decision is reported.

use std::fs::Metadata;

/// What to do with one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Keep,
    /// Leave the entry (and, for a directory, everything below) out.
    Drop(&'static str),
    /// Keep a regular file's metadata but none of its content.
    Empty(&'static str),
}

/// Which cleaning rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// The default: remove host- and instance-specific state (see [`RULES`]).
    Template,
    /// Keep the tree exactly as it is.
    KeepAll,
}

/// How a rule matches.
#[derive(Debug, Clone, Copy)]
pub enum Match {
    /// This exact path.
    Exact(&'static str),
    /// Entries directly in this directory whose name starts with the prefix.
    PrefixIn(&'static str, &'static str),
    /// Entries directly in this directory whose name ends with the suffix.
    SuffixIn(&'static str, &'static str),
    /// Every non-directory entry anywhere below this directory.
    FilesBelow(&'static str),
    /// Every entry anywhere below this directory (the directory stays).
    AllBelow(&'static str),
}

/// Rule table: (match, applies to regular files only, action). The first
/// matching rule wins. Documented in docs/TEMPLATES.md.
pub const RULES: &[(Match, bool, Action)] = &[
    (
        Match::Exact("etc/machine-id"),
        true,
        Action::Empty("emptied machine-id"),
    ),
    (
        Match::Exact("var/lib/dbus/machine-id"),
        true,
        Action::Drop("removed machine-id copy"),
    ),
    (
        Match::Exact("etc/hostname"),
        true,
        Action::Empty("emptied host name"),
    ),
    (
        Match::Exact("etc/resolv.conf"),
        true,
        Action::Empty("emptied resolver config"),
    ),
    (
        Match::PrefixIn("etc/ssh", "ssh_host_"),
        false,
        Action::Drop("removed ssh host key"),
    ),
    (
        Match::Exact("var/lib/systemd/random-seed"),
        false,
        Action::Drop("removed random seed"),
    ),
    (
        Match::Exact("var/lib/systemd/credential.secret"),
        false,
        Action::Drop("removed credential secret"),
    ),
    (
        Match::Exact("var/cache/ldconfig/aux-cache"),
        false,
        Action::Drop("removed ldconfig aux cache"),
    ),
    (
        Match::FilesBelow("var/cache/apt"),
        false,
        Action::Drop("removed apt cache"),
    ),
    (
        Match::FilesBelow("var/lib/apt/lists"),
        false,
        Action::Drop("removed apt lists"),
    ),
    (
        Match::FilesBelow("var/cache/dnf"),
        false,
        Action::Drop("removed dnf cache"),
    ),
    (
        Match::FilesBelow("var/cache/yum"),
        false,
        Action::Drop("removed yum cache"),
    ),
    (
        Match::SuffixIn("var/cache/debconf", "-old"),
        false,
        Action::Drop("removed debconf backup"),
    ),
    (
        Match::SuffixIn("var/lib/dpkg", "-old"),
        false,
        Action::Drop("removed dpkg backup"),
    ),
    (
        Match::PrefixIn("var/lib/rpm", "__db."),
        false,
        Action::Drop("removed rpm db environment"),
    ),
    (
        Match::FilesBelow("var/log/journal"),
        false,
        Action::Drop("removed journal"),
    ),
    (
        Match::FilesBelow("var/log"),
        true,
        Action::Empty("emptied log"),
    ),
    (
        Match::AllBelow("tmp"),
        false,
        Action::Drop("removed temporary file"),
    ),
    (
        Match::AllBelow("var/tmp"),
        false,
        Action::Drop("removed temporary file"),
    ),
    (
        Match::Exact("root/.bash_history"),
        false,
        Action::Drop("removed shell history"),
    ),
];

fn split_parent(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (b"", path),
    }
}

fn below(path: &[u8], dir: &str) -> bool {
    path.len() > dir.len() + 1 && path.starts_with(dir.as_bytes()) && path[dir.len()] == b'/'
}

impl Profile {
    /// Decides what happens to the entry at `path` (relative, no leading "/").
    pub fn classify(&self, path: &[u8], meta: &Metadata) -> Action {
        if *self == Profile::KeepAll {
            return Action::Keep;
        }
        let (parent, name) = split_parent(path);
        for (m, files_only, action) in RULES {
            if *files_only && !meta.is_file() {
                continue;
            }
            let hit = match m {
                Match::Exact(p) => path == p.as_bytes(),
                Match::PrefixIn(d, pre) => {
                    parent == d.as_bytes() && name.starts_with(pre.as_bytes())
                }
                Match::SuffixIn(d, suf) => parent == d.as_bytes() && name.ends_with(suf.as_bytes()),
                Match::FilesBelow(d) => !meta.is_dir() && below(path, d),
                Match::AllBelow(d) => below(path, d),
            };
            if hit {
                // Emptying only makes sense for regular files with content.
                if let Action::Empty(_) = action {
                    if meta.len() == 0 {
                        return Action::Keep;
                    }
                }
                return *action;
            }
        }
        Action::Keep
    }
}
