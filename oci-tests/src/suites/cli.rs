//! cli.*: features, spec, list, --log/--log-format, --version.

use anyhow::{ensure, Context};
use serde_json::Value;

use crate::ctx::{short, Ctx};
use crate::harness::{Outcome, TestDef, TestResult};

pub fn register(t: &mut Vec<TestDef>) {
    t.push(TestDef::new("cli.features", features));
    t.push(TestDef::new(
        "cli.spec_generates_config",
        spec_generates_config,
    ));
    t.push(TestDef::new(
        "cli.spec_refuses_overwrite",
        spec_refuses_overwrite,
    ));
    t.push(TestDef::new("cli.list_json", list_json));
    t.push(TestDef::new("cli.list_table", list_table));
    t.push(TestDef::new("cli.list_quiet", list_quiet));
    t.push(TestDef::new("cli.log_json", log_json));
    t.push(TestDef::new("cli.log_text", log_text));
    t.push(TestDef::new("cli.version", version));
}

fn features(ctx: &mut Ctx) -> TestResult {
    let out = ctx.rt(&["features"])?.ok()?;
    let f: oci_spec::runtime::Features = serde_json::from_str(&out.stdout)
        .context("features output does not match the spec's schema")?;
    ensure!(
        !f.oci_version_min().is_empty() && !f.oci_version_max().is_empty(),
        "features lacks ociVersionMin/Max"
    );
    let hooks = f.hooks().clone().unwrap_or_default();
    for h in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        ensure!(
            hooks.iter().any(|x| x == h),
            "features.hooks lacks {h}: {hooks:?}"
        );
    }
    let opts = f.mount_options().clone().unwrap_or_default();
    for o in [
        "bind", "rbind", "ro", "rw", "nosuid", "rslave", "rprivate", "rshared",
    ] {
        ensure!(
            opts.iter().any(|x| x == o),
            "features.mountOptions lacks {o}"
        );
    }
    let raw: Value = serde_json::from_str(&out.stdout)?;
    let ns = raw["linux"]["namespaces"]
        .as_array()
        .context("features has no linux.namespaces")?;
    for n in ["pid", "network", "ipc", "uts", "mount", "user", "cgroup"] {
        ensure!(
            ns.iter().any(|x| x == n),
            "features.linux.namespaces lacks {n}"
        );
    }
    Ok(Outcome::Pass)
}

fn spec_generates_config(ctx: &mut Ctx) -> TestResult {
    let dir = ctx.dir.join("spec-bundle");
    std::fs::create_dir_all(&dir)?;
    ctx.rt(&["spec", "--bundle", &dir.display().to_string()])?
        .ok()?;
    let text =
        std::fs::read_to_string(dir.join("config.json")).context("spec wrote no config.json")?;
    let spec: oci_spec::runtime::Spec = serde_json::from_str(&text)
        .context("the generated config.json does not match the spec's schema")?;
    ensure!(
        !spec.version().is_empty(),
        "generated config has no ociVersion"
    );
    let args = spec
        .process()
        .as_ref()
        .and_then(|p| p.args().clone())
        .unwrap_or_default();
    ensure!(!args.is_empty(), "generated config has no process.args");
    ensure!(spec.root().is_some(), "generated config has no root");
    Ok(Outcome::Pass)
}

fn spec_refuses_overwrite(ctx: &mut Ctx) -> TestResult {
    let dir = ctx.dir.join("spec-bundle");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("config.json"), "keep me")?;
    ctx.rt(&["spec", "--bundle", &dir.display().to_string()])?
        .runc_error()?;
    ensure!(
        std::fs::read_to_string(dir.join("config.json"))? == "keep me",
        "spec overwrote config.json"
    );
    Ok(Outcome::Pass)
}

fn list_json(ctx: &mut Ctx) -> TestResult {
    let b = ctx.bundle()?;
    ctx.create(&b)?;
    let out = ctx.rt(&["list", "--format", "json"])?.ok()?;
    let v: Value = serde_json::from_str(&out.stdout).context("list --format json is not JSON")?;
    let arr = v.as_array().context("list --format json is not an array")?;
    let me = arr
        .iter()
        .find(|c| c["id"] == b.id.as_str())
        .context("list does not show the container")?;
    ensure!(
        me["status"] == "created",
        "list says status {}",
        me["status"]
    );
    ensure!(
        me["pid"] == ctx.pid(&b.id)?,
        "list pid {} differs from state",
        me["pid"]
    );
    ensure!(
        me["bundle"].as_str() == b.dir.to_str(),
        "list bundle is {}",
        me["bundle"]
    );
    Ok(Outcome::Pass)
}

fn list_table(ctx: &mut Ctx) -> TestResult {
    let b = ctx.bundle()?;
    ctx.create(&b)?;
    let out = ctx.rt(&["list"])?.ok()?;
    let mut lines = out.stdout.lines();
    let header = lines.next().unwrap_or_default();
    for col in ["ID", "PID", "STATUS", "BUNDLE"] {
        ensure!(header.contains(col), "list header lacks {col}: {header:?}");
    }
    ensure!(
        lines.any(|l| l.split_whitespace().next() == Some(b.id.as_str()) && l.contains("created")),
        "list does not show the created container: {:?}",
        short(&out.stdout)
    );
    Ok(Outcome::Pass)
}

fn list_quiet(ctx: &mut Ctx) -> TestResult {
    let a = ctx.bundle()?;
    let b = ctx.bundle()?;
    ctx.create(&a)?;
    ctx.create(&b)?;
    let out = ctx.rt(&["list", "-q"])?.ok()?;
    let mut ids: Vec<&str> = out.stdout.lines().collect();
    ids.sort();
    let mut want = vec![a.id.as_str(), b.id.as_str()];
    want.sort();
    ensure!(
        ids == want,
        "list -q printed {ids:?}, expected exactly {want:?}"
    );
    Ok(Outcome::Pass)
}

fn failing_create_with_log(ctx: &mut Ctx, format: &str) -> anyhow::Result<String> {
    let mut b = ctx.bundle()?;
    b.spec["root"]["path"] = serde_json::json!("no-such-rootfs");
    b.write_config()?;
    let log = ctx.dir.join(format!("runtime-{format}.log"));
    let bundle = b.dir.display().to_string();
    let log_s = log.display().to_string();
    ctx.cmd(&["create", "--bundle", &bundle, &b.id])
        .global(&["--log", &log_s, "--log-format", format])
        .run()?
        .runc_error()?;
    let text = std::fs::read_to_string(&log).context("--log file was not written")?;
    ensure!(
        !text.trim().is_empty(),
        "the --log file is empty after a failed create"
    );
    Ok(text)
}

fn log_json(ctx: &mut Ctx) -> TestResult {
    let text = failing_create_with_log(ctx, "json")?;
    let mut saw_error = false;
    for l in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value =
            serde_json::from_str(l).with_context(|| format!("log line is not JSON: {l:?}"))?;
        ensure!(
            v["level"].is_string() && v["msg"].is_string() && v["time"].is_string(),
            "log line lacks level/msg/time: {l}"
        );
        if v["level"] == "error" && !v["msg"].as_str().unwrap_or("").is_empty() {
            saw_error = true;
        }
    }
    ensure!(
        saw_error,
        "no {{\"level\":\"error\"}} line with a message in the log: {}",
        short(&text)
    );
    Ok(Outcome::Pass)
}

fn log_text(ctx: &mut Ctx) -> TestResult {
    let text = failing_create_with_log(ctx, "text")?;
    ensure!(
        text.lines()
            .any(|l| !l.trim().is_empty() && serde_json::from_str::<Value>(l).is_err()),
        "the text log has no plain-text line: {}",
        short(&text)
    );
    Ok(Outcome::Pass)
}

fn version(ctx: &mut Ctx) -> TestResult {
    // runc and crun both start with "<name> version <x>" (go-runc, used by
    // containerd, looks for such lines).
    let out = ctx.cmd(&["--version"]).without_root().run()?.ok()?;
    let first = out.stdout.lines().next().unwrap_or_default();
    let words: Vec<&str> = first.split_whitespace().collect();
    ensure!(
        words.len() >= 3
            && words[1] == "version"
            && words[2].starts_with(|c: char| c.is_ascii_digit()),
        "--version starts with {first:?}, not \"<name> version <number>\" like runc and crun"
    );
    Ok(Outcome::Pass)
}
