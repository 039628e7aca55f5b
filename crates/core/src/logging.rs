//! The runtime's log sink, as OpenSIPS's core logging parameters describe it: `log_level`
//! and `xlog_level` (shared with the script engine and the MI `log_level`/`xlog_level`
//! commands through the same atomics), `stderror_enabled`, `syslog_enabled` (RFC 3164 lines
//! to the local syslog daemon on the `/dev/log` datagram socket), `syslog_facility`,
//! `syslog_name`, `log_prefix`, `log_stdout` (the stderr stream goes to stdout instead) and
//! `debug_mode` (level 4, stderr). Script `xlog`/`log` lines come here through
//! [`sipox_script::MsgCx::set_log_sink`].

use std::io::Write as _;
use std::os::unix::net::UnixDatagram;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use parking_lot::Mutex;
use sipox_cfg_syntax::{Config, Item, Value};

/// OpenSIPS levels.
pub(crate) const L_ERR: i32 = -1;
/// Warning.
pub(crate) const L_WARN: i32 = 1;
/// Notice.
pub(crate) const L_NOTICE: i32 = 2;
/// Info.
pub(crate) const L_INFO: i32 = 3;

/// What script contexts write their lines to.
pub(crate) type Sink = Arc<dyn Fn(i32, &[u8]) + Send + Sync>;

/// Where log lines go and how they look.
#[derive(Debug)]
pub struct Logger {
    log_level: Arc<AtomicI32>,
    xlog_level: Arc<AtomicI32>,
    stderr: bool,
    stdout: bool,
    syslog: Option<Mutex<Option<UnixDatagram>>>,
    syslog_path: std::path::PathBuf,
    facility: u8,
    name: String,
    prefix: String,
}

/// Logging settings read from the configuration.
#[derive(Debug, Clone)]
pub(crate) struct LogSettings {
    pub(crate) log_level: i32,
    pub(crate) xlog_level: Option<i32>,
    pub(crate) stderr: bool,
    pub(crate) stdout: bool,
    pub(crate) syslog: bool,
    pub(crate) facility: u8,
    pub(crate) name: String,
    pub(crate) prefix: String,
}

fn facility_code(name: &str) -> Option<u8> {
    let n = name.trim().to_ascii_uppercase();
    let n = n.strip_prefix("LOG_").unwrap_or(&n);
    Some(match n {
        "KERN" => 0,
        "USER" => 1,
        "MAIL" => 2,
        "DAEMON" => 3,
        "AUTH" => 4,
        "SYSLOG" => 5,
        "LPR" => 6,
        "NEWS" => 7,
        "UUCP" => 8,
        "CRON" => 9,
        "AUTHPRIV" => 10,
        "FTP" => 11,
        _ => {
            let d = n.strip_prefix("LOCAL")?.parse::<u8>().ok()?;
            if d > 7 {
                return None;
            }
            16 + d
        }
    })
}

impl LogSettings {
    /// Reads the logging parameters (the values were type-checked by `CoreConfig`).
    pub(crate) fn from_ast(ast: &Config) -> Self {
        let mut s = Self {
            log_level: 2,
            xlog_level: None,
            stderr: true,
            stdout: false,
            syslog: false,
            facility: 3,
            name: "sipox".into(),
            prefix: String::new(),
        };
        let mut stderr_set = false;
        let mut debug = false;
        for item in &ast.items {
            let Item::Param(p) = item else { continue };
            let b = match &p.value {
                Value::Bool(b) => Some(*b),
                Value::Int(i) => Some(*i != 0),
                _ => None,
            };
            let text = match &p.value {
                Value::Str(t) | Value::Ident(t) => Some(t.as_str()),
                _ => None,
            };
            let int = match &p.value {
                Value::Int(i) => i32::try_from(*i).ok(),
                _ => None,
            };
            match p.name.as_str() {
                "log_level" | "debug" => s.log_level = int.unwrap_or(s.log_level),
                "xlog_level" => s.xlog_level = int.or(s.xlog_level),
                "stderror_enabled" | "log_stderror" => {
                    s.stderr = b.unwrap_or(s.stderr);
                    stderr_set = true;
                }
                "syslog_enabled" => s.syslog = b.unwrap_or(s.syslog),
                "log_stdout" => s.stdout = b.unwrap_or(s.stdout),
                "debug_mode" => debug = b.unwrap_or(false),
                "syslog_facility" | "log_facility" => {
                    if let Some(f) = text.and_then(facility_code) {
                        s.facility = f;
                    }
                }
                "syslog_name" | "log_name" => {
                    if let Some(t) = text {
                        s.name = t.to_owned();
                    }
                }
                "log_prefix" => {
                    if let Some(t) = text {
                        t.clone_into(&mut s.prefix);
                    }
                }
                _ => {}
            }
        }
        if s.syslog && !stderr_set {
            s.stderr = false;
        }
        if debug {
            s.log_level = 4;
            s.stderr = true;
        }
        s
    }
}

/// Syslog severity of an OpenSIPS level.
const fn severity(level: i32) -> u8 {
    match level {
        i32::MIN..=-3 => 1,
        -2 => 2,
        -1 | 0 => 3,
        1 => 4,
        2 => 5,
        3 => 6,
        _ => 7,
    }
}

/// The level's name as OpenSIPS prints it.
const fn level_name(level: i32) -> &'static str {
    match level {
        i32::MIN..=-3 => "ALERT",
        -2 => "CRITICAL",
        -1 | 0 => "ERROR",
        1 => "WARNING",
        2 => "NOTICE",
        3 => "INFO",
        _ => "DBG",
    }
}

impl Logger {
    pub(crate) fn new(
        s: &LogSettings,
        log_level: Arc<AtomicI32>,
        xlog_level: Arc<AtomicI32>,
    ) -> Self {
        Self {
            log_level,
            xlog_level,
            stderr: s.stderr,
            stdout: s.stdout,
            syslog: s.syslog.then(|| Mutex::new(None)),
            syslog_path: std::path::PathBuf::from("/dev/log"),
            facility: s.facility,
            name: s.name.clone(),
            prefix: s.prefix.clone(),
        }
    }

    /// The shared `log_level` cell.
    pub fn log_level(&self) -> i32 {
        self.log_level.load(Ordering::Relaxed)
    }

    /// The shared `xlog_level` cell.
    pub fn xlog_level(&self) -> i32 {
        self.xlog_level.load(Ordering::Relaxed)
    }

    /// A core message at `level` (`"INFO:core: text"`), if the log level lets it through.
    pub fn log(&self, level: i32, text: &str) {
        if level > self.log_level() {
            return;
        }
        let line = format!("{}:core: {text}", level_name(level));
        self.emit(level, line.as_bytes());
    }

    /// Writes a line that passed its level check (script lines arrive formatted).
    pub fn emit(&self, level: i32, text: &[u8]) {
        let text = text.strip_suffix(b"\n").unwrap_or(text);
        if self.stderr {
            let mut line = Vec::with_capacity(text.len() + self.prefix.len() + 32);
            line.extend_from_slice(stamp().as_bytes());
            let _ = write!(line, " [{}] ", std::process::id());
            line.extend_from_slice(self.prefix.as_bytes());
            line.extend_from_slice(text);
            line.push(b'\n');
            let _ = if self.stdout {
                std::io::stdout().lock().write_all(&line)
            } else {
                std::io::stderr().lock().write_all(&line)
            };
        }
        if let Some(sock) = &self.syslog {
            let pri = u16::from(self.facility) * 8 + u16::from(severity(level));
            let mut line = Vec::with_capacity(text.len() + 64);
            let _ = write!(
                line,
                "<{pri}>{} {}[{}]: ",
                stamp(),
                self.name,
                std::process::id()
            );
            line.extend_from_slice(self.prefix.as_bytes());
            line.extend_from_slice(text);
            let mut g = sock.lock();
            if g.is_none() {
                *g = UnixDatagram::unbound().ok();
            }
            if let Some(s) = g.as_ref()
                && s.send_to(&line, &self.syslog_path).is_err()
            {
                // the syslog daemon restarted or is absent: reconnect on the next line
                *g = None;
            }
        }
    }

    /// The sink handed to script contexts.
    pub(crate) fn sink(self: &Arc<Self>) -> Sink {
        let me = Arc::clone(self);
        Arc::new(move |level, text| me.emit(level, text))
    }

    #[cfg(test)]
    fn with_syslog_path(mut self, p: &std::path::Path) -> Self {
        self.syslog_path = p.to_path_buf();
        self
    }
}

/// `Nov 23 23:03:20` (UTC), the syslog time stamp.
fn stamp() -> String {
    let t = sipox_mi::ctime(wall());
    t.get(4..19).unwrap_or(&t).to_owned()
}

#[allow(clippy::disallowed_methods)] // the logger is an I/O driver
fn wall() -> std::time::SystemTime {
    std::time::SystemTime::now()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(cfg: &str) -> LogSettings {
        LogSettings::from_ast(&sipox_cfg_syntax::parse_str("t.cfg", cfg).ast)
    }

    #[test]
    fn reads_parameters() {
        let s = settings(
            "log_level=3\nsyslog_enabled=yes\nsyslog_facility=LOG_LOCAL3\nlog_prefix=\"px \"\n",
        );
        assert_eq!(
            (
                s.log_level,
                s.syslog,
                s.stderr,
                s.facility,
                s.prefix.as_str()
            ),
            (3, true, false, 19, "px ")
        );
        let s = settings("debug_mode=yes\nstderror_enabled=no\n");
        assert_eq!((s.log_level, s.stderr), (4, true));
    }

    #[test]
    fn syslog_datagrams() {
        let dir = std::env::temp_dir().join(format!("sipox-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log.sock");
        let _ = std::fs::remove_file(&path);
        let rx = UnixDatagram::bind(&path).unwrap();
        rx.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let s = settings("syslog_enabled=yes\nsyslog_name=\"osx\"\nlog_prefix=\"P:\"\n");
        let lvl = Arc::new(AtomicI32::new(s.log_level));
        let l = Logger::new(&s, Arc::clone(&lvl), lvl).with_syslog_path(&path);
        l.log(L_INFO, "hidden at level 2");
        l.log(L_WARN, "hello");
        let mut buf = [0u8; 512];
        let n = rx.recv(&mut buf).unwrap();
        let got = String::from_utf8_lossy(&buf[..n]);
        // daemon (3) * 8 + warning (4)
        assert!(got.starts_with("<28>"), "{got}");
        assert!(
            got.contains(" osx[") && got.ends_with("]: P:WARNING:core: hello"),
            "{got}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
