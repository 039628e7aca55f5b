//! `mi_fifo`: JSON-RPC over a named pipe, framed as OpenSIPS frames it.
//!
//! A client creates its own reply FIFO in `reply_dir`, then writes
//! `:<reply_fifo_name>:<json-rpc request>` into the server FIFO (no newline needed: the JSON
//! document ends the request). The server writes the one-line JSON reply into
//! `reply_dir/<reply_fifo_name>` and closes it. An empty name (`::{...}`) asks for no reply.
//! Reply names with `.`, `/` or `\` are refused (no path escapes from `reply_dir`).
//!
//! The server FIFO is opened read-write so that clients closing it never give end-of-file;
//! one OS thread reads it and runs the commands, as OpenSIPS's FIFO process does.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

use crate::{Mi, MiError, wall_clock};

/// `O_NONBLOCK`, for opening a reply FIFO without blocking on an absent reader.
#[cfg(any(target_os = "linux", target_os = "android"))]
const O_NONBLOCK: i32 = 0o4000;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const O_NONBLOCK: i32 = 0x0004;
/// `ENXIO`: a FIFO opened for writing without a reader.
const ENXIO: i32 = 6;
/// Longest reply FIFO name.
const MAX_NAME: usize = 255;
/// Largest pending request; beyond it the buffer is dropped.
const MAX_REQUEST: usize = 1024 * 1024;
/// Attempts to open a reply FIFO whose reader is not there yet, and the wait between them.
const REPLY_RETRIES: u32 = 10;
const REPLY_WAIT: Duration = Duration::from_millis(50);
/// How long a reply may stay blocked on a full pipe before it is abandoned.
const REPLY_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// `mi_fifo`'s modparams.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FifoConfig {
    /// `fifo_name` (default `/tmp/opensips_fifo`).
    pub fifo_name: PathBuf,
    /// `fifo_mode` (default 0660).
    pub fifo_mode: u32,
    /// `reply_dir` (default `/tmp/`).
    pub reply_dir: PathBuf,
}

impl Default for FifoConfig {
    fn default() -> Self {
        Self {
            fifo_name: PathBuf::from("/tmp/opensips_fifo"),
            fifo_mode: 0o660,
            reply_dir: PathBuf::from("/tmp/"),
        }
    }
}

/// The running FIFO server; [`FifoServer::stop`] ends it and removes the FIFO.
#[derive(Debug)]
pub struct FifoServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FifoServer {
    /// Create the FIFO (replacing any file at that path) and start the reader thread.
    ///
    /// # Errors
    /// The FIFO cannot be created or opened.
    pub fn start(mi: Arc<Mi>, cfg: FifoConfig) -> io::Result<Self> {
        make_fifo(&cfg.fifo_name, cfg.fifo_mode)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&cfg.fifo_name)?;
        let stop = Arc::new(AtomicBool::new(false));
        let st = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("MI FIFO".into())
            .spawn(move || reader(file, &mi, &cfg.reply_dir, &st))?;
        Ok(Self {
            path: cfg_path(&cfg.fifo_name),
            stop,
            thread: Some(thread),
        })
    }

    /// The FIFO's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stop the reader thread and remove the FIFO.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // wake the reader blocked in read()
        if let Ok(mut f) = OpenOptions::new()
            .write(true)
            .custom_flags(O_NONBLOCK)
            .open(&self.path)
        {
            let _ = f.write_all(b"\n");
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for FifoServer {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.shutdown();
        }
    }
}

fn cfg_path(p: &Path) -> PathBuf {
    p.to_path_buf()
}

/// Create a FIFO with `mode`, replacing whatever is at `path`.
fn make_fifo(path: &Path, mode: u32) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => std::fs::remove_file(path)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    // std has no mkfifo and the workspace forbids unsafe FFI: use the coreutils tool.
    let st = std::process::Command::new("mkfifo")
        .arg("-m")
        .arg(format!("{mode:o}"))
        .arg(path)
        .status()?;
    if !st.success() {
        return Err(io::Error::other(format!(
            "mkfifo {} failed: {st}",
            path.display()
        )));
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

fn reader(mut file: File, mi: &Mi, reply_dir: &Path, stop: &AtomicBool) {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::SeqCst) {
        let n = match file.read(&mut chunk) {
            Ok(0) => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if stop.load(Ordering::SeqCst) {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        loop {
            match next_frame(&buf) {
                Frame::NeedMore => {
                    if buf.len() > MAX_REQUEST {
                        buf.clear();
                    }
                    break;
                }
                Frame::Skip(n) => {
                    buf.drain(..n);
                }
                Frame::Request {
                    used,
                    reply,
                    request,
                } => {
                    let reply = reply.map(str::to_string);
                    let answer = match &request {
                        Ok(v) => mi.handle_value(v, wall_clock()),
                        Err(_) => Some(parse_error_reply()),
                    };
                    buf.drain(..used);
                    if let (Some(name), Some(answer)) = (reply, answer)
                        && valid_reply_name(&name)
                    {
                        let _ = write_reply(&reply_dir.join(&name), answer.as_bytes());
                    }
                }
            }
        }
    }
}

fn parse_error_reply() -> String {
    let e = MiError::parse_error().to_json();
    format!(r#"{{"jsonrpc":"2.0","error":{e},"id":null}}"#)
}

/// What the front of the read buffer holds.
#[derive(Debug)]
pub(crate) enum Frame<'a> {
    /// An incomplete request: read more.
    NeedMore,
    /// Bytes to drop: whitespace, or garbage up to the end of its line.
    Skip(usize),
    /// A request: bytes it used, reply FIFO name (`None` = no reply), the parsed JSON.
    Request {
        used: usize,
        reply: Option<&'a str>,
        request: Result<Value, serde_json::Error>,
    },
}

/// Split the next `:reply:{json}` request off `buf`.
pub(crate) fn next_frame(buf: &[u8]) -> Frame<'_> {
    let ws = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
    if ws > 0 {
        return Frame::Skip(ws);
    }
    let Some(&first) = buf.first() else {
        return Frame::NeedMore;
    };
    let to_eol = || {
        buf.iter()
            .position(|&b| b == b'\n')
            .map_or(buf.len(), |p| p + 1)
    };
    if first != b':' {
        return Frame::Skip(to_eol());
    }
    let Some(sep) = buf[1..].iter().position(|&b| b == b':').map(|p| p + 1) else {
        return if buf.len() > MAX_NAME + 1 || buf.contains(&b'\n') {
            Frame::Skip(to_eol())
        } else {
            Frame::NeedMore
        };
    };
    let Ok(name) = std::str::from_utf8(&buf[1..sep]) else {
        return Frame::Skip(to_eol());
    };
    let body_start = sep + 1;
    let body = &buf[body_start..];
    let lead = body.iter().take_while(|b| b.is_ascii_whitespace()).count();
    if lead == body.len() {
        return Frame::NeedMore;
    }
    let mut it = serde_json::Deserializer::from_slice(&body[lead..]).into_iter::<Value>();
    let reply = (!name.is_empty()).then_some(name);
    match it.next() {
        None => Frame::NeedMore,
        Some(Ok(v)) => Frame::Request {
            used: body_start + lead + it.byte_offset(),
            reply,
            request: Ok(v),
        },
        Some(Err(e)) if e.is_eof() => Frame::NeedMore,
        Some(Err(e)) => {
            // drop the rest of the line (or everything read, if no newline)
            let rest = body_start + lead;
            let used = buf[rest..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(buf.len(), |p| rest + p + 1);
            Frame::Request {
                used,
                reply,
                request: Err(e),
            }
        }
    }
}

fn valid_reply_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME && !name.contains(['.', '/', '\\'])
}

/// Open the client's reply FIFO without blocking, check it is a plain FIFO (not a link, not
/// hard-linked), and write the reply and a newline.
fn write_reply(path: &Path, reply: &[u8]) -> io::Result<()> {
    let mut tries = 0;
    let mut f = loop {
        match OpenOptions::new()
            .write(true)
            .custom_flags(O_NONBLOCK)
            .open(path)
        {
            Ok(f) => break f,
            Err(e) if e.raw_os_error() == Some(ENXIO) && tries < REPLY_RETRIES => {
                tries += 1;
                std::thread::sleep(REPLY_WAIT);
            }
            Err(e) => return Err(e),
        }
    };
    let meta = f.metadata()?;
    let lmeta = std::fs::symlink_metadata(path)?;
    if !meta.file_type().is_fifo()
        || meta.nlink() > 1
        || lmeta.file_type().is_symlink()
        || lmeta.ino() != meta.ino()
        || lmeta.dev() != meta.dev()
    {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "reply file is not a private FIFO",
        ));
    }
    let mut data = Vec::with_capacity(reply.len() + 1);
    data.extend_from_slice(reply);
    data.push(b'\n');
    let mut off = 0;
    let mut waited = Duration::ZERO;
    while off < data.len() {
        match f.write(&data[off..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => off += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if waited >= REPLY_WRITE_TIMEOUT {
                    return Err(e);
                }
                std::thread::sleep(Duration::from_millis(1));
                waited += Duration::from_millis(1);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(buf: &[u8]) -> (usize, Option<String>, bool) {
        match next_frame(buf) {
            Frame::Request {
                used,
                reply,
                request,
            } => (used, reply.map(str::to_string), request.is_ok()),
            other => panic!("expected a request, got {other:?}"),
        }
    }

    #[test]
    fn frames() {
        let b = br#":r1:{"jsonrpc":"2.0","method":"ps","id":"1"}"#;
        assert_eq!(req(b), (b.len(), Some("r1".into()), true));
        // two requests back to back
        let b2 = br#":a:{"x":1}:b:{"y":2}"#;
        let (used, name, _) = req(b2);
        assert_eq!((used, name.as_deref()), (10, Some("a")));
        assert_eq!(req(&b2[used..]).1.as_deref(), Some("b"));
        // newline-separated, empty reply name
        let b3 = b"::{\"a\":1}\n";
        assert_eq!(req(b3), (9, None, true));
        assert!(matches!(next_frame(b"\n"), Frame::Skip(1)));
    }

    #[test]
    fn partial_and_garbage() {
        assert!(matches!(next_frame(b""), Frame::NeedMore));
        assert!(matches!(next_frame(b":r1"), Frame::NeedMore));
        assert!(matches!(next_frame(b":r1:"), Frame::NeedMore));
        assert!(matches!(
            next_frame(br#":r1:{"jsonrpc":"2."#),
            Frame::NeedMore
        ));
        assert!(matches!(next_frame(b"garbage\n:r:{}"), Frame::Skip(8)));
        let (used, name, ok) = req(b":r:{bad json}\nmore");
        assert_eq!((used, name.as_deref(), ok), (14, Some("r"), false));
    }

    #[test]
    fn reply_names() {
        assert!(valid_reply_name("opensips_fifo_reply_12_3_4"));
        assert!(!valid_reply_name("../etc/passwd"));
        assert!(!valid_reply_name("a.b"));
        assert!(!valid_reply_name(""));
    }
}
