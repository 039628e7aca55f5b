//! Running the configuration through an external preprocessor (`opensips -p CMD`).

use std::io::{Read as _, Write as _};
use std::process::{Command, Stdio};

/// Why the preprocessor could not be run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PreprocessError {
    /// The command string is empty.
    #[error("preprocessor command is empty")]
    EmptyCommand,
    /// The program could not be started.
    #[error("cannot start preprocessor '{cmd}': {source}")]
    Spawn {
        /// The command line.
        cmd: String,
        /// OS error.
        source: std::io::Error,
    },
    /// Writing its input or reading its output failed.
    #[error("I/O error while running preprocessor '{cmd}': {source}")]
    Io {
        /// The command line.
        cmd: String,
        /// OS error.
        source: std::io::Error,
    },
    /// It exited unsuccessfully.
    #[error("preprocessor '{cmd}' failed ({status}): {stderr}")]
    Failed {
        /// The command line.
        cmd: String,
        /// Exit status description.
        status: String,
        /// What it printed on stderr (trimmed).
        stderr: String,
    },
}

/// Runs `cmd` (split on whitespace, like OpenSIPS does; no shell) with `input` on stdin
/// and returns its stdout.
pub fn run_preprocessor(cmd: &str, input: &str) -> Result<String, PreprocessError> {
    let mut words = cmd.split_whitespace();
    let Some(program) = words.next() else {
        return Err(PreprocessError::EmptyCommand);
    };
    let mut child = Command::new(program)
        .args(words)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| PreprocessError::Spawn {
            cmd: cmd.to_owned(),
            source,
        })?;
    let io_err = |source| PreprocessError::Io {
        cmd: cmd.to_owned(),
        source,
    };
    let stdin = child.stdin.take();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let (out, err, write_res) = std::thread::scope(|s| {
        let writer = s.spawn(move || -> std::io::Result<()> {
            if let Some(mut w) = stdin {
                match w.write_all(input.as_bytes()) {
                    // the child may exit without reading everything; that's its business
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                    other => other?,
                }
            }
            Ok(())
        });
        let err_reader = s.spawn(move || {
            let mut buf = Vec::new();
            if let Some(e) = stderr.as_mut() {
                let _ = e.read_to_end(&mut buf);
            }
            buf
        });
        let mut out = Vec::new();
        let read_res = stdout.as_mut().map(|o| o.read_to_end(&mut out));
        let write_res = writer.join().unwrap_or(Ok(()));
        let err = err_reader.join().unwrap_or_default();
        (read_res.map(|r| r.map(|_| out)), err, write_res)
    });
    write_res.map_err(io_err)?;
    let out = match out {
        Some(r) => r.map_err(io_err)?,
        None => Vec::new(),
    };
    let status = child.wait().map_err(io_err)?;
    if !status.success() {
        return Err(PreprocessError::Failed {
            cmd: cmd.to_owned(),
            status: status.to_string(),
            stderr: String::from_utf8_lossy(&err).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}
