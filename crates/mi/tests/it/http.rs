//! mi_http over a real socket: keep-alive, routing, status codes, prometheus.

use std::sync::Arc;

use serde_json::Value;
use sipox_mi::http::{self, HttpConfig};
use sipox_stats::{GroupMode, PromConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::fixture;

async fn start(
    prom: Option<PromConfig>,
) -> (
    std::net::SocketAddr,
    Arc<sipox_mi::Mi>,
    crate::support::Fixture,
) {
    let f = fixture();
    let cfg = HttpConfig {
        ip: "127.0.0.1".parse().unwrap(),
        port: 0,
        prometheus: prom,
        ..HttpConfig::default()
    };
    let l = http::bind(&cfg).await.unwrap();
    let addr = l.local_addr().unwrap();
    let mi = Arc::clone(&f.mi);
    tokio::spawn(http::serve(l, Arc::clone(&mi), cfg));
    (addr, mi, f)
}

/// Read one response: (status, headers, body).
async fn read_response(s: &mut TcpStream) -> (u16, String, String) {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        let mut c = [0u8; 1024];
        let n = s.read(&mut c).await.unwrap();
        assert!(
            n > 0,
            "eof before head: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&c[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .unwrap()
        .parse()
        .unwrap();
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let mut c = [0u8; 1024];
        let n = s.read(&mut c).await.unwrap();
        assert!(n > 0);
        body.extend_from_slice(&c[..n]);
    }
    let status = head[9..12].parse().unwrap();
    (status, head, String::from_utf8(body).unwrap())
}

fn post(path: &str, body: &str, extra: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}\r\n{body}",
        body.len()
    )
}

#[tokio::test]
async fn post_mi_with_keep_alive() {
    let (addr, _mi, _f) = start(None).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    // two requests pipelined on one connection, the second split across writes
    let r1 = post("/mi", r#"{"jsonrpc":"2.0","method":"uptime","id":1}"#, "");
    let r2 = post(
        "/mi",
        r#"{"jsonrpc":"2.0","method":"get_statistics","params":[["core:"]],"id":2}"#,
        "",
    );
    s.write_all(r1.as_bytes()).await.unwrap();
    s.write_all(&r2.as_bytes()[..20]).await.unwrap();
    let (st, head, body) = read_response(&mut s).await;
    assert_eq!(st, 200);
    assert!(head.contains("Content-Type: application/json"));
    assert!(head.contains("Connection: keep-alive"));
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v["result"]["Up time"].as_str().unwrap().ends_with(" [sec]"));
    assert_eq!(v["id"], 1);
    s.write_all(&r2.as_bytes()[20..]).await.unwrap();
    let (st, _, body) = read_response(&mut s).await;
    assert_eq!(st, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["result"]["core:rcv_requests"], 10);
    // Connection: close ends the connection after the answer
    s.write_all(
        post(
            "/mi/",
            r#"{"jsonrpc":"2.0","method":"nope","id":3}"#,
            "Connection: close\r\n",
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let (st, head, body) = read_response(&mut s).await;
    assert_eq!(st, 200);
    assert!(head.contains("Connection: close"));
    assert!(body.contains("-32601"));
    let mut rest = Vec::new();
    assert_eq!(s.read_to_end(&mut rest).await.unwrap(), 0);
}

#[tokio::test]
async fn bad_json_and_statuses() {
    let (addr, _mi, _f) = start(None).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(post("/mi", "{oops", "").as_bytes())
        .await
        .unwrap();
    let (st, _, body) = read_response(&mut s).await;
    assert_eq!(st, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], -32700);
    s.write_all(b"GET /mi HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (st, head, _) = read_response(&mut s).await;
    assert_eq!(st, 405);
    assert!(head.contains("Allow: POST"));
    s.write_all(post("/other", "{}", "").as_bytes())
        .await
        .unwrap();
    assert_eq!(read_response(&mut s).await.0, 404);
    s.write_all(b"POST /mi HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_response(&mut s).await.0, 501);
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"garbage\r\n\r\n").await.unwrap();
    assert_eq!(read_response(&mut s).await.0, 400);
    // HTTP/1.0 closes by default
    let mut s = TcpStream::connect(addr).await.unwrap();
    let b = r#"{"jsonrpc":"2.0","method":"pwd","id":1}"#;
    s.write_all(
        format!(
            "POST /mi HTTP/1.0\r\nContent-Length: {}\r\n\r\n{b}",
            b.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let (st, head, _) = read_response(&mut s).await;
    assert_eq!(st, 200);
    assert!(head.contains("Connection: close"));
}

#[tokio::test]
async fn prometheus_endpoint() {
    let prom = PromConfig {
        statistics: vec!["core:rcv_requests shmem:".into()],
        group_mode: GroupMode::Label,
        ..PromConfig::default()
    };
    let (addr, _mi, _f) = start(Some(prom)).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (st, head, body) = read_response(&mut s).await;
    assert_eq!(st, 200);
    assert!(head.contains("text/plain; version=0.0.4"));
    assert!(
        body.contains(
            "# TYPE opensips_rcv_requests counter\nopensips_rcv_requests{group=\"core\"} 10\n"
        ),
        "{body}"
    );
    assert!(
        body.contains("opensips_used_size{group=\"shmem\"} 4096\n"),
        "{body}"
    );
    s.write_all(post("/metrics", "{}", "").as_bytes())
        .await
        .unwrap();
    assert_eq!(read_response(&mut s).await.0, 405);
}

#[tokio::test]
async fn kill_stops_the_server() {
    let f = fixture();
    let cfg = HttpConfig {
        ip: "127.0.0.1".parse().unwrap(),
        port: 0,
        ..HttpConfig::default()
    };
    let l = http::bind(&cfg).await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(http::serve(l, Arc::clone(&f.mi), cfg));
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(post("/mi", r#"{"jsonrpc":"2.0","method":"kill","id":1}"#, "").as_bytes())
        .await
        .unwrap();
    let (_, _, body) = read_response(&mut s).await;
    assert!(body.contains(r#""result":"OK""#));
    tokio::time::timeout(std::time::Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
