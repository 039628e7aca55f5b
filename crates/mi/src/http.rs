//! `httpd` + `mi_http` (+ `prometheus`): a small HTTP/1.1 server on tokio.
//!
//! `POST /<root>` (default `/mi`) carries one JSON-RPC request and answers it as
//! `application/json`; `GET /<prometheus root>` (default `/metrics`, when enabled) answers the
//! text exposition. Bodies are framed by `Content-Length` only; connections are kept alive
//! (HTTP/1.1 default, or HTTP/1.0 with `Connection: keep-alive`). Other paths answer 404,
//! other methods on a known path 405.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use sipox_stats::PromConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::{Mi, wall_clock};

/// Largest request head (request line + headers).
const MAX_HEAD: usize = 16 * 1024;
/// Largest request body.
const MAX_BODY: usize = 4 * 1024 * 1024;
/// An idle keep-alive connection is closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// `httpd`'s `ip`/`port`, `mi_http`'s `root`, and the optional `prometheus` module.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// httpd `ip` (default all addresses).
    pub ip: IpAddr,
    /// httpd `port` (default 8888).
    pub port: u16,
    /// mi_http `root` (default `mi`).
    pub root: String,
    /// The prometheus module, when loaded.
    pub prometheus: Option<PromConfig>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 8888,
            root: "mi".into(),
            prometheus: None,
        }
    }
}

/// Bind the listener `cfg` names.
///
/// # Errors
/// The bind failure.
pub async fn bind(cfg: &HttpConfig) -> io::Result<TcpListener> {
    TcpListener::bind(SocketAddr::new(cfg.ip, cfg.port)).await
}

/// Accept and serve connections until [`Mi::request_shutdown`] (the `kill` command).
///
/// # Errors
/// A failing `accept` that is not a per-connection error.
pub async fn serve(listener: TcpListener, mi: Arc<Mi>, cfg: HttpConfig) -> io::Result<()> {
    let cfg = Arc::new(cfg);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = mi.shutdown_requested() => return Ok(()),
        };
        match accepted {
            Ok((stream, _)) => {
                let mi = Arc::clone(&mi);
                let cfg = Arc::clone(&cfg);
                tokio::spawn(async move {
                    // a broken client only ends its own connection
                    let _ = connection(stream, &mi, &cfg).await;
                });
            }
            Err(e) if is_transient(&e) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    ) || e.raw_os_error().is_some_and(|c| c == 23 || c == 24) // ENFILE, EMFILE
}

/// A parsed request head.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) keep_alive: bool,
    pub(crate) content_length: Option<usize>,
    pub(crate) chunked: bool,
    pub(crate) expect_continue: bool,
}

/// Parse a request head (without the final blank line). `None` = malformed.
pub(crate) fn parse_head(head: &[u8]) -> Option<Head> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let mut rl = lines.next()?.split(' ');
    let (method, target, version) = (rl.next()?, rl.next()?, rl.next()?);
    if rl.next().is_some() || method.is_empty() || !target.starts_with('/') {
        return None;
    }
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return None,
    };
    let mut h = Head {
        method: method.to_string(),
        path: target.split('?').next().unwrap_or_default().to_string(),
        keep_alive: http11,
        content_length: None,
        chunked: false,
        expect_continue: false,
    };
    for line in lines {
        let (name, value) = line.split_once(':')?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let n = value.parse().ok()?;
            if h.content_length.is_some_and(|old| old != n) {
                return None;
            }
            h.content_length = Some(n);
        } else if name.eq_ignore_ascii_case("connection") {
            for tok in value.split(',').map(str::trim) {
                if tok.eq_ignore_ascii_case("close") {
                    h.keep_alive = false;
                } else if tok.eq_ignore_ascii_case("keep-alive") {
                    h.keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            h.chunked = !value.eq_ignore_ascii_case("identity");
        } else if name.eq_ignore_ascii_case("expect") {
            h.expect_continue = value.eq_ignore_ascii_case("100-continue");
        }
    }
    Some(h)
}

fn path_is(path: &str, root: &str) -> bool {
    let p = path.trim_start_matches('/');
    let p = p.strip_suffix('/').unwrap_or(p);
    p == root.trim_matches('/')
}

struct Response {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
    allow: Option<&'static str>,
}

impl Response {
    fn text(status: u16, body: &str) -> Self {
        Self {
            status,
            content_type: "text/plain",
            body: body.as_bytes().to_vec(),
            allow: None,
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        _ => "Internal Server Error",
    }
}

async fn write_response(s: &mut TcpStream, r: &Response, keep_alive: bool) -> io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
        r.status,
        reason(r.status),
        r.content_type,
        r.body.len()
    );
    if let Some(a) = r.allow {
        out.push_str("Allow: ");
        out.push_str(a);
        out.push_str("\r\n");
    }
    out.push_str(if keep_alive {
        "Connection: keep-alive\r\n\r\n"
    } else {
        "Connection: close\r\n\r\n"
    });
    let mut buf = out.into_bytes();
    buf.extend_from_slice(&r.body);
    s.write_all(&buf).await
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

async fn connection(mut s: TcpStream, mi: &Mi, cfg: &HttpConfig) -> io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    loop {
        // read the head
        let head_end = loop {
            if let Some(e) = find_head_end(&buf) {
                break e;
            }
            if buf.len() > MAX_HEAD {
                let r = Response::text(431, "request head too large");
                return write_response(&mut s, &r, false).await;
            }
            let mut chunk = [0u8; 4096];
            let n = match tokio::time::timeout(IDLE_TIMEOUT, s.read(&mut chunk)).await {
                Ok(r) => r?,
                Err(_) => return Ok(()),
            };
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let Some(head) = parse_head(&buf[..head_end]) else {
            return write_response(&mut s, &Response::text(400, "bad request"), false).await;
        };
        buf.drain(..head_end + 4);
        if head.chunked {
            let r = Response::text(501, "chunked bodies are not supported");
            return write_response(&mut s, &r, false).await;
        }
        let len = head.content_length.unwrap_or(0);
        if len > MAX_BODY {
            return write_response(&mut s, &Response::text(413, "body too large"), false).await;
        }
        if head.expect_continue && len > buf.len() {
            s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
        }
        while buf.len() < len {
            let mut chunk = vec![0u8; (len - buf.len()).min(64 * 1024)];
            let n = match tokio::time::timeout(IDLE_TIMEOUT, s.read(&mut chunk)).await {
                Ok(r) => r?,
                Err(_) => return Ok(()),
            };
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let body: Vec<u8> = buf.drain(..len).collect();
        let resp = route(&head, &body, mi, cfg);
        write_response(&mut s, &resp, head.keep_alive).await?;
        if !head.keep_alive {
            return Ok(());
        }
    }
}

fn route(head: &Head, body: &[u8], mi: &Mi, cfg: &HttpConfig) -> Response {
    if path_is(&head.path, &cfg.root) {
        if head.method != "POST" {
            return Response {
                allow: Some("POST"),
                ..Response::text(405, "only POST is accepted")
            };
        }
        let reply = mi.handle_bytes(body, wall_clock()).unwrap_or_default();
        return Response {
            status: 200,
            content_type: "application/json",
            body: reply.into_bytes(),
            allow: None,
        };
    }
    if let Some(p) = &cfg.prometheus
        && path_is(&head.path, &p.root)
    {
        if head.method != "GET" {
            return Response {
                allow: Some("GET"),
                ..Response::text(405, "only GET is accepted")
            };
        }
        return Response {
            status: 200,
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: mi.config().stats.prometheus(p).into_bytes(),
            allow: None,
        };
    }
    Response::text(404, "not found")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads() {
        let h = parse_head(b"POST /mi?x=1 HTTP/1.1\r\nContent-Length: 12\r\nConnection: close")
            .unwrap();
        assert_eq!(h.method, "POST");
        assert_eq!(h.path, "/mi");
        assert_eq!(h.content_length, Some(12));
        assert!(!h.keep_alive);
        let h = parse_head(b"GET / HTTP/1.0\r\nconnection: Keep-Alive").unwrap();
        assert!(h.keep_alive);
        assert!(parse_head(b"GET / HTTP/2").is_none());
        assert!(parse_head(b"GET /\r\n").is_none());
        assert!(parse_head(b"POST / HTTP/1.1\r\nContent-Length: x").is_none());
        assert!(parse_head(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2").is_none());
        assert!(parse_head(b"POST / HTTP/1.1\r\nbroken header").is_none());
    }

    #[test]
    fn paths() {
        assert!(path_is("/mi", "mi"));
        assert!(path_is("/mi/", "mi"));
        assert!(path_is("/mi", "/mi"));
        assert!(!path_is("/mix", "mi"));
        assert!(!path_is("/", "mi"));
    }
}
