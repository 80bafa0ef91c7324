//! runc-compatible logging: `--log FILE`, `--log-format text|json`, `--debug`.
//!
//! Engines read the runtime's errors from the log file: podman takes the last
//! `{"level":"error","msg":...}` line when the runtime is listed in `runtime_supports_json`.
//! libcontainer logs through `tracing` with very chatty errors on every failure path;
//! those go to the log file (or with `--debug` everywhere) but never clutter stderr,
//! where only vzrun's own warnings and the final error appear.

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata};
use tracing_core::span::{Attributes, Id, Record};
use tracing_core::{Interest, LevelFilter, Subscriber};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("unknown log format {other:?} (use text or json)")),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct LogConfig {
    pub file: Option<PathBuf>,
    pub format: LogFormat,
    pub debug: bool,
}

struct RuncLogger {
    out: Mutex<Box<dyn Write + Send>>,
    format: LogFormat,
    /// Threshold for vzrun's own events.
    own: Level,
    /// Threshold for libcontainer/libcgroups events, if they are written at all.
    libraries: Option<Level>,
}

static FINAL: Mutex<Option<(Option<PathBuf>, LogFormat)>> = Mutex::new(None);

/// Installs the logger for this process. Errors opening the log file are reported to
/// stderr and logging falls back to stderr (a runtime must still work).
pub fn init(config: &LogConfig) {
    let file = config.file.as_ref().and_then(|path| {
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o644)
            .open(path)
            .map_err(|e| eprintln!("vzrun: cannot open log file {}: {e}", path.display()))
            .ok()
    });
    let to_file = file.is_some();
    let out: Box<dyn Write + Send> = match file {
        Some(f) => Box::new(f),
        None => Box::new(std::io::stderr()),
    };
    let logger = RuncLogger {
        out: Mutex::new(out),
        format: config.format,
        own: if config.debug {
            Level::DEBUG
        } else {
            Level::WARN
        },
        libraries: match (config.debug, to_file) {
            (true, _) => Some(Level::DEBUG),
            (false, true) => Some(Level::ERROR),
            (false, false) => None,
        },
    };
    *FINAL.lock().unwrap() = Some((
        if to_file { config.file.clone() } else { None },
        config.format,
    ));
    let _ = tracing::subscriber::set_global_default(logger);
}

/// Reports the error that ends the command: to the log file in its format (engines read
/// it there) and to stderr for the person at the terminal.
pub fn fatal(message: &str) {
    let target = FINAL.lock().ok().and_then(|g| g.clone());
    match target {
        Some((Some(path), format)) => {
            if let Ok(mut f) = OpenOptions::new().append(true).open(&path) {
                let _ = f.write_all(format_line(format, Level::ERROR, message).as_bytes());
            }
            eprintln!("vzrun: {message}");
        }
        Some((None, format)) => {
            let _ =
                std::io::stderr().write_all(format_line(format, Level::ERROR, message).as_bytes());
        }
        None => eprintln!("vzrun: {message}"),
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

/// One log line in runc's (logrus') formats.
pub fn format_line(format: LogFormat, level: Level, message: &str) -> String {
    let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    match format {
        LogFormat::Json => {
            let line =
                serde_json::json!({"level": level_name(level), "msg": message, "time": time});
            format!("{line}\n")
        }
        LogFormat::Text => format!(
            "time=\"{time}\" level={} msg={}\n",
            level_name(level),
            serde_json::to_string(message).unwrap_or_default()
        ),
    }
}

impl RuncLogger {
    fn threshold(&self, target: &str) -> Option<Level> {
        if target.starts_with("vzrun") {
            Some(self.own)
        } else {
            self.libraries
        }
    }
}

struct MessageVisitor {
    message: String,
    fields: String,
}

impl Visit for MessageVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

impl Subscriber for RuncLogger {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if self.enabled(metadata) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.threshold(metadata.target())
            .is_some_and(|t| *metadata.level() <= t)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        let most = match self.libraries {
            Some(l) if l > self.own => l,
            _ => self.own,
        };
        Some(LevelFilter::from_level(most))
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut visitor = MessageVisitor {
            message: String::new(),
            fields: String::new(),
        };
        event.record(&mut visitor);
        let text = format!("{}{}", visitor.message, visitor.fields);
        let line = format_line(self.format, *event.metadata().level(), &text);
        if let Ok(mut out) = self.out.lock() {
            let _ = out.write_all(line.as_bytes());
        }
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_are_runc_shaped() {
        let line = format_line(
            LogFormat::Json,
            Level::ERROR,
            "container \"x\" does not exist",
        );
        let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "container \"x\" does not exist");
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn text_lines_quote_the_message() {
        let line = format_line(LogFormat::Text, Level::WARN, "a \"b\"");
        assert!(line.contains("level=warning msg=\"a \\\"b\\\"\""), "{line}");
    }
}
