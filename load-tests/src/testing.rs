//! Test support: a bare HTTP/1.1 listener that answers each request as told.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Listens on loopback; each connection's request head is read, `answer` is given its request
/// line (`GET /path?query HTTP/1.1`) and returns the whole response to write before closing.
pub async fn http_listener(answer: impl Fn(&str) -> String + Send + Sync + 'static) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let answer = std::sync::Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = l.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&seen);
                let line = text.lines().next().unwrap_or_default();
                let _ = tcp.write_all(answer(line).as_bytes()).await;
                let _ = tcp.shutdown().await;
            });
        }
    });
    addr
}

/// A `200` with a JSON body, closing the connection.
pub fn json_200(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    )
}
