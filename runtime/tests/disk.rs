//! Two-level disk quota end to end (docs/DISK-QUOTA.md): vzctl create/start/set/destroy
//! and vzlist on VZ file systems these tests make (sparse images, loop-mounted, removed
//! after), busybox containers writing past their limits.
//!
//! What the kernel can do decides what is proven: with quota formats (CONFIG_QFMT_V2,
//! CONFIG_XFS_QUOTA: a stock distribution kernel) simfs limits are ext4/XFS project quotas
//! (EDQUOT, soft limits with grace) and an image has its own quotas and the second level;
//! without them (this project's CI kernel) simfs limits are refused with a clear error
//! and an image's size and inode count are the limits (ENOSPC). scripts/test-disk.sh runs
//! these tests on the host and again in a VM with Debian's stock kernel, with
//! VZRUN_DISK_REQUIRE_QUOTA=1 so that there the quota paths must run.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::vz::{make_template, wait_for, Vz, TEMPLATE, VZCTL};
use vzrun::openvz::disk::{image, loopdev, quota};

/// Set in the stock-kernel VM: the kernel must have quota support.
fn quota_required() -> bool {
    std::env::var("VZRUN_DISK_REQUIRE_QUOTA").as_deref() == Ok("1")
}

/// A template archive in a temporary directory of the test's own (a static would never
/// be dropped: its directory would stay behind).
struct Template {
    _dir: tempfile::TempDir,
    archive: PathBuf,
}

impl Template {
    fn new(name: &str, extra: impl FnOnce(&Path)) -> Template {
        let dir = tempfile::Builder::new()
            .prefix("disk-tpl-")
            .tempdir()
            .unwrap();
        let archive = make_template(dir.path(), name, extra);
        Template { _dir: dir, archive }
    }

    fn busybox() -> Template {
        Template::new(TEMPLATE, |_| {})
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FsKind {
    Ext4,
    Xfs,
}

/// A VZ file system of the test's own: a sparse image, loop-mounted (autoclear), with
/// project quotas when the kernel has them; unmounted on drop.
struct VzFs {
    _dir: tempfile::TempDir,
    mnt: PathBuf,
    /// Project quotas are enforced.
    quota: bool,
}

fn run(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

impl VzFs {
    fn new(kind: FsKind) -> VzFs {
        let dir = tempfile::Builder::new().prefix("vzfs-").tempdir().unwrap();
        let img = dir.path().join("vz.img");
        let mnt = dir.path().join("vz");
        std::fs::create_dir(&mnt).unwrap();
        std::fs::File::create(&img)
            .unwrap()
            .set_len(1 << 30)
            .unwrap();
        let (img_s, mnt_s) = (img.to_str().unwrap(), mnt.to_str().unwrap());
        let quota = match kind {
            FsKind::Ext4 => {
                let made = run("mkfs.ext4", &["-q", "-F", "-O", "quota,project", img_s]);
                // A kernel without quota formats cannot mount an ext4 with the quota
                // feature at all: a plain ext4 then.
                if made && run("mount", &["-o", "loop,prjquota", img_s, mnt_s]) {
                    true
                } else {
                    assert!(run("mkfs.ext4", &["-q", "-F", img_s]));
                    assert!(run("mount", &["-o", "loop", img_s, mnt_s]));
                    false
                }
            }
            FsKind::Xfs => {
                assert!(run("mkfs.xfs", &["-q", "-f", img_s]));
                if run("mount", &["-o", "loop,prjquota", img_s, mnt_s]) {
                    true
                } else {
                    assert!(run("mount", &["-o", "loop", img_s, mnt_s]));
                    false
                }
            }
        };
        if quota_required() {
            assert!(
                quota,
                "{kind:?}: this kernel must enforce project quotas here"
            );
        }
        let quota = quota
            && quota::state(&mnt, quota::QuotaType::Project)
                .unwrap()
                .enforcing;
        VzFs {
            _dir: dir,
            mnt,
            quota,
        }
    }
}

impl Drop for VzFs {
    fn drop(&mut self) {
        if nix::mount::umount2(&self.mnt, nix::mount::MntFlags::empty()).is_err() {
            let _ = nix::mount::umount2(&self.mnt, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// Copies host programs and the libraries they load into a container's root (mounted).
fn install_tools(root: &Path, programs: &[&str]) {
    for program in programs {
        let out = Command::new("ldd").arg(program).output().unwrap();
        let mut files: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter(|w| w.starts_with('/'))
            .map(String::from)
            .collect();
        files.push(program.to_string());
        for f in files {
            let dest = root.join(f.trim_start_matches('/'));
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::copy(&f, &dest).unwrap();
        }
    }
}

fn conf(vz: &Vz, ctid: &str) -> String {
    std::fs::read_to_string(vz.path(&format!("etc/conf/{ctid}.conf"))).unwrap()
}

fn usage(vz: &Vz, ctid: &str, key: &str) -> Option<u64> {
    vz.vzlist_json(ctid)[key]["usage"].as_u64()
}

fn host_can_write(dir: &Path, mb: usize) {
    let file = dir.join("host-file");
    std::fs::write(&file, vec![7u8; mb << 20]).expect("the host writes on the VZ file system");
    std::fs::remove_file(file).unwrap();
}

const EDQUOT: &str = "Disk quota exceeded";
const ENOSPC: &str = "No space left on device";

// ---------------------------------------------------------------- simfs

fn simfs_limits(kind: FsKind) {
    if common::skip() {
        return;
    }
    // Container ids are global (cgroups /vz/CTID): each test its own.
    let (a, b, id) = match kind {
        FsKind::Ext4 => ("301", "302", 301),
        FsKind::Xfs => ("311", "312", 311),
    };
    let tpl = Template::busybox();
    let fs = VzFs::new(kind);
    let vz = Vz::custom(Some(&fs.mnt), &[(TEMPLATE, &tpl.archive)], "");
    let create_limited = [
        "create",
        a,
        "--ostemplate",
        TEMPLATE,
        "--diskspace",
        "20M:30M",
        "--diskinodes",
        "1000:1200",
        "--quotatime",
        "3600",
    ];
    if !fs.quota {
        // Refused before anything is made, naming what is missing.
        let err = vz.refused(&create_limited, 60, "project quotas");
        assert!(
            err.contains("prjquota") && err.contains("VE_LAYOUT=ploop"),
            "{err}"
        );
        assert!(!vz.private(a).exists());
        assert!(!vz.path(&format!("etc/conf/{a}.conf")).exists());
        // Without limits simfs works as before; asking for them later is refused alike.
        vz.ok(&["create", a, "--ostemplate", TEMPLATE]);
        vz.refused(
            &["set", a, "--diskspace", "20M", "--save"],
            60,
            "project quotas",
        );
        assert!(!conf(&vz, a).contains("DISKSPACE=\"20480"));
        // DISK_QUOTA=no in vz.conf: the first level is off, limits are only recorded.
        let off = Vz::custom(
            Some(&fs.mnt),
            &[(TEMPLATE, &tpl.archive)],
            "DISK_QUOTA=no\n",
        );
        let mut args = create_limited.to_vec();
        args[1] = b;
        off.ok(&args);
        off.ok(&["start", b]);
        let (code, _) = off.sh(b, "dd if=/dev/zero of=/root/big bs=1M count=40");
        assert_eq!(code, 0, "no limit with DISK_QUOTA=no");
        off.ok(&["stop", b]);
        return;
    }
    vz.ok(&create_limited);
    vz.ok(&["create", b, "--ostemplate", TEMPLATE]);
    vz.ok(&["start", a]);
    vz.ok(&["start", b]);
    // Between the soft and the hard limit, within the grace period: allowed.
    let (code, out) = vz.sh(a, "dd if=/dev/zero of=/root/a bs=1M count=25");
    assert_eq!(code, 0, "{out}");
    // Past the hard limit: EDQUOT inside (XFS reports a project's exhaustion as ENOSPC,
    // like a full file system).
    let full = match kind {
        FsKind::Ext4 => EDQUOT,
        FsKind::Xfs => ENOSPC,
    };
    let (code, out) = vz.sh(a, "dd if=/dev/zero of=/root/big bs=1M count=40");
    assert_ne!(code, 0);
    assert!(out.contains(full), "{out}");
    let used = usage(&vz, a, "diskspace").unwrap();
    assert!(
        (28_000..=30_720).contains(&used),
        "usage {used} KiB at the 30 MiB hard limit"
    );
    let j = vz.vzlist_json(a);
    assert_eq!(j["diskspace"]["softlimit"], 20480);
    assert_eq!(j["diskspace"]["hardlimit"], 30720);
    assert_eq!(j["diskinodes"]["hardlimit"], 1200);
    // The neighbour and the host go on.
    let (code, out) = vz.sh(b, "dd if=/dev/zero of=/root/big bs=1M count=40");
    assert_eq!(code, 0, "{out}");
    host_can_write(&fs.mnt, 20);
    // Inodes: EDQUOT at the hard limit.
    let (code, out) = vz.sh(
        a,
        "rm -f /root/big /root/a; i=0; while [ $i -lt 3000 ]; do touch /root/f$i || exit 1; i=$((i+1)); done",
    );
    assert_ne!(code, 0);
    assert!(out.contains(full), "{out}");
    let inodes = usage(&vz, a, "diskinodes").unwrap();
    assert!(
        (1150..=1200).contains(&inodes),
        "{inodes} inodes at the 1200 hard limit"
    );
    let table = vz.vzlist(&["-H", "-o", "ctid,diskinodes,diskinodes.s,diskinodes.h", a]);
    assert_eq!(
        table.split_whitespace().collect::<Vec<_>>(),
        vec![a, &inodes.to_string(), "1000", "1200"]
    );
    // Grace: past the soft limit for longer than QUOTATIME, even below the hard limit
    // nothing more goes in (the grace period is the VZ file system's: one for all). The
    // timer starts when usage crosses the soft limit: fill up to just below it first.
    vz.sh(a, "rm -f /root/f*");
    let below = 20 * 1024 - usage(&vz, a, "diskspace").unwrap() - 512;
    let (code, out) = vz.sh(
        a,
        &format!("dd if=/dev/zero of=/root/a bs=1K count={below} conv=fsync"),
    );
    assert_eq!(code, 0, "{out}");
    vz.ok(&["set", a, "--quotatime", "3"]);
    // (fsync: XFS starts the timer when the blocks are allocated)
    let (_, out) = vz.sh(
        a,
        "dd if=/dev/zero of=/root/b bs=1M count=2 conv=fsync; echo dd1=$?; sleep 5; \
         dd if=/dev/zero of=/root/c bs=1M count=1 conv=fsync; echo dd2=$?",
    );
    assert!(out.contains("dd1=0") && out.contains("dd2=1"), "{out}");
    assert!(out.contains(full), "{out}");
    vz.sh(a, "rm -f /root/a /root/b /root/c");
    // Live: the new limits hold at once; without --save the config keeps the old ones.
    vz.ok(&["set", a, "--diskspace", "60M:80M", "--quotatime", "3600"]);
    let (code, out) = vz.sh(a, "dd if=/dev/zero of=/root/big bs=1M count=70");
    assert_eq!(code, 0, "{out}");
    assert!(conf(&vz, a).contains("DISKSPACE=\"20480:30720\""));
    // The root inside cannot move files out of its project (its quota is out of reach
    // too: no device node names the file system, and quotactl_fd is filtered like
    // quotactl, which second_level_user_quota_inside checks with the quota tools).
    install_tools(&vz.root(a), &["/usr/bin/chattr"]);
    let (code, out) = vz.sh(a, "chattr -p 0 /root/big");
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("Operation not permitted"), "{out}");
    let (_, status) = vz.sh(a, "grep CapEff /proc/self/status");
    let eff = u64::from_str_radix(status.split_whitespace().nth(1).unwrap(), 16).unwrap();
    assert_eq!(
        eff & (1 << 24),
        0,
        "no CAP_SYS_RESOURCE (it ignores hard limits)"
    );
    // Saved limits survive a restart.
    vz.ok(&["set", a, "--diskspace", "90M:100M", "--save"]);
    vz.ok(&["stop", a]);
    vz.ok(&["start", a]);
    assert_eq!(vz.vzlist_json(a)["diskspace"]["hardlimit"], 102400);
    let q = quota::get(&fs.mnt, quota::QuotaType::Project, id).unwrap();
    assert_eq!(q.block_hard_kb, 102400);
    vz.ok(&["stop", a]);
    vz.ok(&["stop", b]);
    // Destroy takes the project's limits away with the files (XFS forgets the id).
    vz.ok(&["destroy", a]);
    match quota::get(&fs.mnt, quota::QuotaType::Project, id) {
        Ok(q) => assert_eq!((q.block_hard_kb, q.inode_hard, q.space_bytes), (0, 0, 0)),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{e}"),
    }
}

#[test]
fn simfs_on_ext4_project_quota() {
    simfs_limits(FsKind::Ext4);
}

#[test]
fn simfs_on_xfs_project_quota() {
    simfs_limits(FsKind::Xfs);
}

// ---------------------------------------------------------------- ploop

#[test]
fn ploop_image_limits_and_growth() {
    if common::skip() {
        return;
    }
    let tpl = Template::busybox();
    let fs = VzFs::new(FsKind::Ext4);
    // The layout is chosen per VZ root, in vz.conf.
    let vz = Vz::custom(
        Some(&fs.mnt),
        &[(TEMPLATE, &tpl.archive)],
        "VE_LAYOUT=ploop\n",
    );
    vz.ok(&[
        "create",
        "401",
        "--ostemplate",
        TEMPLATE,
        "--diskspace",
        "40M:60M",
        "--diskinodes",
        "1000:1200",
    ]);
    assert!(conf(&vz, "401").contains("VE_LAYOUT=\"ploop\""));
    let img = vz.private("401").join(image::IMAGE_NAME);
    let names: Vec<_> = std::fs::read_dir(vz.private("401"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec![image::IMAGE_NAME],
        "the private area holds the image only"
    );
    {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(&img).unwrap();
        assert!(
            m.blocks() * 512 < m.len() / 4,
            "sparse: {} of {}",
            m.blocks() * 512,
            m.len()
        );
    }
    assert!(
        loopdev::find(&img).is_empty(),
        "no loop device while stopped"
    );
    let quota = image::features(&img).unwrap().quota;
    if quota_required() {
        assert!(quota, "the image must have quotas on this kernel");
    }
    // A simfs neighbour without limits in the same VZ root.
    vz.ok(&[
        "create",
        "402",
        "--ostemplate",
        TEMPLATE,
        "--layout",
        "simfs",
    ]);
    vz.ok(&["start", "401"]);
    vz.ok(&["start", "402"]);
    let (_, df) = vz.sh("401", "df -k / | tail -1");
    let size_kb: u64 = df.split_whitespace().nth(1).unwrap().parse().unwrap();
    // df shows the limit: the soft one through the project quota, else the image's size.
    let shown = if quota { 40 * 1024 } else { 60 * 1024 };
    assert!(
        (shown..=shown + shown / 50).contains(&size_kb),
        "df shows {size_kb} KiB, limit {shown}"
    );
    let (code, out) = vz.sh("401", "dd if=/dev/zero of=/big bs=1M count=100");
    assert_ne!(code, 0);
    assert!(out.contains(if quota { EDQUOT } else { ENOSPC }), "{out}");
    let used = usage(&vz, "401", "diskspace").unwrap();
    assert!(
        (56_000..=62_000).contains(&used),
        "usage {used} KiB at the 60 MiB limit"
    );
    let (code, out) = vz.sh("402", "dd if=/dev/zero of=/root/big bs=1M count=100");
    assert_eq!(code, 0, "the neighbour writes: {out}");
    host_can_write(&fs.mnt, 20);
    // Inodes.
    let (code, out) = vz.sh(
        "401",
        "rm /big; i=0; while [ $i -lt 3000 ]; do touch /f$i || exit 1; i=$((i+1)); done",
    );
    assert_ne!(code, 0);
    assert!(out.contains(if quota { EDQUOT } else { ENOSPC }), "{out}");
    let inodes = usage(&vz, "401", "diskinodes").unwrap();
    assert!(
        (1150..=1260).contains(&inodes),
        "{inodes} inodes at the 1200 limit"
    );
    vz.sh("401", "rm -f /f*");
    // Growing. Live where the host's root may resize a mounted ext4 (CAP_SYS_RESOURCE),
    // else refused while running and done offline once stopped.
    let grow = [
        "set",
        "401",
        "--diskspace",
        "100M:120M",
        "--diskinodes",
        "3000:3000",
    ];
    if image::can_grow_online() {
        vz.ok(&grow);
    } else {
        vz.refused(&grow, 60, "CAP_SYS_RESOURCE");
        vz.ok(&["stop", "401"]);
        let mut saved = grow.to_vec();
        saved.push("--save");
        vz.ok(&saved);
        vz.ok(&["start", "401"]);
    }
    let (code, out) = vz.sh(
        "401",
        "dd if=/dev/zero of=/big bs=1M count=110 && i=0; while [ $i -lt 2000 ]; do touch /f$i || exit 1; i=$((i+1)); done",
    );
    assert_eq!(code, 0, "room after growing: {out}");
    let (_, df) = vz.sh("401", "df -k / | tail -1");
    let size_kb: u64 = df.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(size_kb >= 100 * 1024, "df after growing: {df}");
    // Lowering: with quotas only the limit drops (the image keeps its size); without,
    // the size is the limit and an image never shrinks.
    if quota {
        vz.ok(&["set", "401", "--diskspace", "30M:50M"]);
        let (code, out) = vz.sh("401", "dd if=/dev/zero of=/more bs=1M count=1");
        assert_ne!(code, 0);
        assert!(out.contains(EDQUOT), "{out}");
    } else {
        vz.refused(
            &["set", "401", "--diskspace", "30M:50M", "--save"],
            60,
            "never shrink",
        );
    }
    vz.ok(&["stop", "401"]);
    vz.ok(&["stop", "402"]);
    assert!(
        loopdev::find(&img).is_empty(),
        "stop detaches the loop device"
    );
    assert!(!vzrun::mountinfo::is_mount_point(&vz.root("401")));
    vz.ok(&["mount", "401"]);
    assert_eq!(loopdev::find(&img).len(), 1);
    vz.ok(&["umount", "401"]);
    assert!(
        loopdev::find(&img).is_empty(),
        "umount detaches the loop device"
    );
    vz.ok(&["destroy", "401"]);
    assert!(!vz.private("401").exists());
    assert!(loopdev::find(&img).is_empty());
}

// ---------------------------------------------------------------- second level

#[test]
fn second_level_user_quota_inside() {
    if common::skip() {
        return;
    }
    let tpl = Template::busybox();
    let fs = VzFs::new(FsKind::Ext4);
    let vz = Vz::custom(Some(&fs.mnt), &[(TEMPLATE, &tpl.archive)], "");
    vz.ok(&[
        "create",
        "501",
        "--ostemplate",
        TEMPLATE,
        "--layout",
        "ploop",
        "--diskspace",
        "150M",
    ]);
    vz.ok(&["create", "502", "--ostemplate", TEMPLATE]);
    // simfs: never (the host file system's user quotas are the whole host's).
    vz.refused(
        &["set", "502", "--quotaugidlimit", "100", "--save"],
        65,
        "VE_LAYOUT=ploop",
    );
    let img = vz.private("501").join(image::IMAGE_NAME);
    if !image::features(&img).unwrap().quota {
        assert!(!quota_required());
        vz.refused(
            &["set", "501", "--quotaugidlimit", "100", "--save"],
            65,
            "quota",
        );
        return;
    }
    vz.ok(&["set", "501", "--quotaugidlimit", "100", "--save"]);
    vz.ok(&["start", "501"]);
    let root = vz.root("501");
    install_tools(
        &root,
        &[
            "/usr/sbin/setquota",
            "/usr/bin/quota",
            "/usr/sbin/repquota",
            "/usr/bin/chattr",
        ],
    );
    // The container's root manages its users' quotas with the standard tools.
    let script = "echo 'quser:x:1000:1000::/home/q:/bin/sh' >> /etc/passwd && \
        echo 'quser:x:1000:' >> /etc/group && mkdir -p /home/q && chown quser:quser /home/q && \
        setquota -u quser 1024 2048 0 0 / && quota -u quser && repquota -u /";
    let (code, out) = vz.sh("501", script);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("2048"), "quota shows the limit: {out}");
    assert!(out.contains("quser"), "repquota lists the user: {out}");
    let (code, out) = vz.sh(
        "501",
        "su quser -c 'dd if=/dev/zero of=/home/q/x bs=1M count=5'",
    );
    assert_ne!(code, 0);
    assert!(out.contains(EDQUOT), "{out}");
    let (code, out) = vz.sh("501", "dd if=/dev/zero of=/root/x bs=1M count=10");
    assert_eq!(code, 0, "root has no user limit: {out}");
    // Its first-level limits stay out of its reach.
    let (code, out) = vz.sh("501", "setquota -P 1 0 0 0 0 /");
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("Operation not permitted"), "{out}");
    let (code, out) = vz.sh("501", "chattr -p 0 /home/q/x");
    assert!(
        code != 0 && out.contains("Operation not permitted"),
        "{out}"
    );
    // Off, live: no device node, no enforcement.
    vz.ok(&["set", "501", "--quotaugidlimit", "0"]);
    let (_, out) = vz.sh("501", "ls /dev");
    assert!(!out.contains("loop"), "{out}");
    let (code, out) = vz.sh(
        "501",
        "su quser -c 'dd if=/dev/zero of=/home/q/x bs=1M count=5'",
    );
    assert_eq!(code, 0, "{out}");
    // On again, live.
    vz.ok(&["set", "501", "--quotaugidlimit", "100"]);
    let (code, out) = vz.sh(
        "501",
        "rm /home/q/x; su quser -c 'dd if=/dev/zero of=/home/q/x bs=1M count=5'",
    );
    assert!(code != 0 && out.contains(EDQUOT), "{out}");
    let (code, out) = vz.sh("501", "repquota -u / | grep quser");
    assert_eq!(code, 0, "{out}");
    vz.ok(&["stop", "501"]);
}

// ---------------------------------------------------------------- bad input

#[test]
fn bad_disk_values_are_refused_before_anything_changes() {
    if common::skip() {
        return;
    }
    let tpl = Template::busybox();
    let vz = Vz::custom(None, &[(TEMPLATE, &tpl.archive)], "");
    fn create<'a>(extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec!["create", "601", "--ostemplate", TEMPLATE];
        args.extend_from_slice(extra);
        args
    }
    for (extra, words) in [
        (&["--diskspace", "-5"][..], "negative"),
        (&["--diskspace", "2G:1G"], "above the hard limit"),
        (&["--diskspace", "10Q"], "unknown unit"),
        (&["--diskspace", "0"], "0 is impossible"),
        (&["--diskinodes", "1k"], "not a number of inodes"),
        (&["--quotatime", "soon"], "not a number"),
        (&["--layout", "zfs"], "use simfs"),
        (&["--layout", "ploop"], "needs a disk size"),
        (
            &["--layout", "ploop", "--diskspace", "1G:unlimited"],
            "needs a disk size",
        ),
    ] {
        vz.refused(&create(extra), 21, words);
        assert!(!vz.private("601").exists(), "{extra:?} left a private area");
        assert!(
            !vz.path("etc/conf/601.conf").exists(),
            "{extra:?} left a config"
        );
    }
    vz.ok(&create(&[]));
    let before = conf(&vz, "601");
    for (args, words) in [
        (&["--diskspace", "5:4"][..], "above the hard limit"),
        (&["--diskinodes", "-1"], "negative"),
        (&["--quotatime", "-1"], "negative"),
        (&["--quotaugidlimit", "many"], "not a number"),
        (&["--diskspace", "1X:2X"], "unknown unit"),
    ] {
        let mut set = vec!["set", "601"];
        set.extend_from_slice(args);
        set.push("--save");
        vz.refused(&set, 21, words);
        assert_eq!(conf(&vz, "601"), before, "{args:?} changed the config");
    }
    // A container without limits: vzlist shows them as unlimited, usage unknown.
    let row = vz.vzlist(&[
        "-H",
        "-o",
        "diskspace,diskspace.s,diskspace.h,diskinodes.h",
        "601",
    ]);
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>(),
        vec!["-", "unlimited", "unlimited", "unlimited"]
    );
    let j = vz.vzlist_json("601");
    assert!(
        j["diskspace"]["usage"].is_null() && j["diskspace"]["hardlimit"].is_null(),
        "{j}"
    );
}

// ---------------------------------------------------------------- crash

#[test]
fn a_create_killed_half_way_is_cleaned_by_destroy() {
    if common::skip() {
        return;
    }
    // Enough data that unpacking takes a while: the image is mounted meanwhile. Written
    // zeroes (not holes): cheap to pack, slow enough to unpack.
    let big = Template::new("big-test", |root| {
        std::fs::write(root.join("zeroes"), vec![0u8; 128 << 20]).unwrap();
    });
    let fs = VzFs::new(FsKind::Ext4);
    let vz = Vz::custom(Some(&fs.mnt), &[("big-test", &big.archive)], "");
    let mut caught = false;
    for ctid in ["701", "702", "703"] {
        vz.ctids.borrow_mut().push(ctid.to_string());
        let root = vz.root(ctid);
        let mut child = vz
            .command(
                VZCTL,
                &[
                    "create",
                    ctid,
                    "--ostemplate",
                    "big-test",
                    "--layout",
                    "ploop",
                    "--diskspace",
                    "300M",
                ],
            )
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut mounted = false;
        wait_for(
            "the create to mount its image or end",
            Duration::from_secs(60),
            || {
                mounted = vzrun::mountinfo::is_mount_point(&root);
                mounted || child.try_wait().unwrap().is_some()
            },
        );
        let _ = child.kill();
        let _ = child.wait();
        let img = vz.private(ctid).join(image::IMAGE_NAME);
        let left_mounted = vzrun::mountinfo::is_mount_point(&root);
        let left_devices = loopdev::find(&img);
        let half_way = mounted && (left_mounted || !left_devices.is_empty());
        if !half_way {
            // It ended (or was past its unmount) before the kill: try again.
            vz.ok(&["destroy", ctid]);
            continue;
        }
        caught = true;
        // What the killed create left: a config, an image mounted through a loop device.
        assert!(vz.status(ctid).starts_with(&format!("CTID {ctid} exist")));
        assert_eq!(
            left_mounted,
            !left_devices.is_empty(),
            "a mount holds the device"
        );
        vz.ok(&["destroy", ctid]);
        assert!(
            loopdev::find(&img).is_empty(),
            "destroy detached the loop device"
        );
        assert!(!vzrun::mountinfo::is_mount_point(&root));
        assert!(!vz.private(ctid).exists());
        assert!(!vz.path(&format!("etc/conf/{ctid}.conf")).exists());
        assert_eq!(
            vz.status(ctid),
            format!("CTID {ctid} deleted unmounted down")
        );
        break;
    }
    assert!(
        caught,
        "three creates finished before they could be killed half-way"
    );
}
