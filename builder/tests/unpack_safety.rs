//! Unpacking refuses hostile layers and leaves nothing behind; the cache
//! resolves names and versions. Runs as root (it restores owners).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use vzbuild::image::{write_archive, ImageMeta};
use vzbuild::tarfmt::{self, EntryHeader, Kind};
use vzbuild::{Compression, ErrorKind, TemplateCache, UnpackOptions};

fn entry(out: &mut Vec<u8>, path: &str, kind: Kind, data: &[u8], link: Option<&str>) {
    tarfmt::write_header(
        out,
        &EntryHeader {
            path: path.as_bytes(),
            kind,
            mode: if kind == Kind::Dir { 0o755 } else { 0o644 },
            uid: 0,
            gid: 0,
            mtime: 1_735_689_600,
            size: data.len() as u64,
            link: link.map(str::as_bytes),
            dev_major: 0,
            dev_minor: 0,
            xattrs: &[],
            sparse_real_size: None,
        },
    )
    .unwrap();
    out.extend_from_slice(data);
    tarfmt::write_padding(out, data.len() as u64).unwrap();
}

/// Writes a template whose layer is exactly the given tar entries.
fn archive(dir: &Path, name: &str, build: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let mut layer = Vec::new();
    build(&mut layer);
    tarfmt::write_end(&mut layer).unwrap();
    let path = dir.join(name);
    let f = std::fs::File::create(&path).unwrap();
    let mut ann = BTreeMap::new();
    ann.insert(
        "org.opencontainers.image.version".to_string(),
        "1".to_string(),
    );
    ann.insert(
        "org.opencontainers.image.ref.name".to_string(),
        "1".to_string(),
    );
    let meta = ImageMeta {
        created_epoch: 1_735_689_600,
        oci_arch: "amd64".into(),
        annotations: ann,
        cmd: vec!["/bin/sh".into()],
        stop_signal: None,
    };
    write_archive(f, Compression::Gzip(6), 2, &meta, None, |enc| {
        enc.write_all(&layer)
            .map_err(|e| vzbuild::Error::Invalid(e.to_string()))
    })
    .unwrap();
    path
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with(".target"))
        .collect()
}

fn refused(build: impl FnOnce(&mut Vec<u8>), expect: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let a = archive(tmp.path(), "bad.oci.tar", build);
    let target = tmp.path().join("target");
    let err = vzbuild::unpack(
        &a,
        &target,
        &UnpackOptions {
            progress: Some(false),
        },
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(
        err.to_string().contains(expect),
        "{err} should mention {expect:?}"
    );
    assert!(
        !target.exists(),
        "target must not exist after a failed unpack"
    );
    assert!(leftovers(tmp.path()).is_empty(), "staging dir left behind");
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "wrote outside the target"
    );
}

#[test]
fn refuses_dotdot() {
    refused(
        |t| entry(t, "../outside/evil", Kind::File, b"x", None),
        "..",
    );
}

#[test]
fn refuses_absolute() {
    refused(
        |t| entry(t, "/etc/evil", Kind::File, b"x", None),
        "absolute",
    );
}

#[test]
fn refuses_write_through_symlink() {
    refused(
        |t| {
            entry(t, "link", Kind::Symlink, b"", Some("../outside"));
            entry(t, "link/evil", Kind::File, b"x", None);
        },
        "non-directory",
    );
}

#[test]
fn refuses_write_through_absolute_symlink() {
    refused(
        |t| {
            entry(t, "etc", Kind::Symlink, b"", Some("/etc"));
            entry(t, "etc/evil-vzbuild-test", Kind::File, b"x", None);
        },
        "non-directory",
    );
    assert!(!Path::new("/etc/evil-vzbuild-test").exists());
}

#[test]
fn refuses_hardlink_outside() {
    refused(
        |t| entry(t, "h", Kind::HardLink, b"", Some("../outside/x")),
        "..",
    );
    refused(
        |t| entry(t, "h", Kind::HardLink, b"", Some("/etc/passwd")),
        "absolute",
    );
}

#[test]
fn refuses_hardlink_through_symlink() {
    refused(
        |t| {
            entry(t, "link", Kind::Symlink, b"", Some("/etc"));
            entry(t, "h", Kind::HardLink, b"", Some("link/passwd"));
        },
        "outside the extracted tree",
    );
}

#[test]
fn refuses_hardlink_to_missing() {
    refused(
        |t| entry(t, "h", Kind::HardLink, b"", Some("nothing")),
        "not an extracted file",
    );
}

#[test]
fn good_archive_unpacks_and_tampering_is_caught() {
    let tmp = tempfile::tempdir().unwrap();
    let a = archive(tmp.path(), "good.oci.tar", |t| {
        entry(t, "./", Kind::Dir, b"", None);
        entry(t, "etc", Kind::Dir, b"", None);
        entry(t, "etc/hello", Kind::File, b"hello world\n", None);
        entry(t, "etc/hi", Kind::HardLink, b"", Some("etc/hello"));
        entry(t, "etc/link", Kind::Symlink, b"", Some("/etc/hello"));
    });
    let target = tmp.path().join("target");
    vzbuild::verify(&a).unwrap();
    vzbuild::unpack(
        &a,
        &target,
        &UnpackOptions {
            progress: Some(false),
        },
    )
    .unwrap();
    assert_eq!(
        std::fs::read(target.join("etc/hi")).unwrap(),
        b"hello world\n"
    );
    assert_eq!(
        std::fs::read_link(target.join("etc/link")).unwrap(),
        Path::new("/etc/hello")
    );

    // Non-empty target: refused as bad input.
    let err = vzbuild::unpack(
        &a,
        &target,
        &UnpackOptions {
            progress: Some(false),
        },
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);

    // Flip one byte inside the layer blob: it follows oci-layout (header +
    // one data block), blobs/, blobs/sha256/ and its own header.
    let mut bytes = std::fs::read(&a).unwrap();
    let layer_data_at = 512 * 5;
    assert_eq!(
        &bytes[layer_data_at..layer_data_at + 2],
        b"\x1f\x8b",
        "gzip magic"
    );
    bytes[layer_data_at + 20] ^= 0x55;
    let bad = tmp.path().join("tampered.oci.tar");
    std::fs::write(&bad, &bytes).unwrap();
    let err = vzbuild::verify(&bad).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    let t2 = tmp.path().join("target2");
    let err = vzbuild::unpack(
        &bad,
        &t2,
        &UnpackOptions {
            progress: Some(false),
        },
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(!t2.exists());
    assert!(leftovers(tmp.path()).is_empty());
}

#[test]
fn cache_resolves_latest_and_reports_not_found() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = TemplateCache::new(tmp.path());
    let d = cache.template_dir("debian-12-x86_64-minimal");
    std::fs::create_dir_all(&d).unwrap();
    for v in ["1.9", "1.10", "1.2"] {
        archive(&d, &format!("{v}.oci.tar"), |t| {
            entry(t, "f", Kind::File, b"x", None)
        });
    }
    // A pack in progress is invisible.
    std::fs::write(d.join(".2.0.oci.tar.tmp-1"), b"partial").unwrap();
    let latest = cache.resolve("debian-12-x86_64-minimal").unwrap();
    assert_eq!(latest.version, "1.10");
    assert_eq!(
        cache
            .resolve("debian-12-x86_64-minimal:latest")
            .unwrap()
            .version,
        "1.10"
    );
    assert_eq!(
        cache
            .resolve("debian-12-x86_64-minimal:1.2")
            .unwrap()
            .version,
        "1.2"
    );
    let versions: Vec<String> = cache
        .list()
        .unwrap()
        .into_iter()
        .map(|t| t.version)
        .collect();
    assert_eq!(versions, ["1.2", "1.9", "1.10"]);
    assert_eq!(
        cache
            .resolve("debian-12-x86_64-minimal:3")
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        cache.resolve("centos-7-x86_64").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        cache.resolve("../etc").unwrap_err().kind(),
        ErrorKind::Invalid
    );
    assert_eq!(
        vzbuild::unpack(
            &tmp.path().join("missing.oci.tar"),
            &tmp.path().join("t"),
            &UnpackOptions::default()
        )
        .unwrap_err()
        .kind(),
        ErrorKind::NotFound
    );
}
