//! A device simulator that speaks as firmware does: HTTP/1.1 over a fresh connection, no
//! Content-Type, TAB-separated ATTLOG lines, `Stamp` in the query. Used by the tests and
//! by `attendance bench ingest`.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, Clone)]
pub struct Device {
    pub addr: SocketAddr,
    pub sn: String,
}

#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Device {
    pub fn new(addr: SocketAddr, sn: &str) -> Self {
        Self {
            addr,
            sn: sn.to_owned(),
        }
    }

    pub async fn request(&self, method: &str, path: &str, body: &[u8]) -> std::io::Result<Answer> {
        let mut stream = TcpStream::connect(self.addr).await?;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: iClock Proxy/1.09\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        );
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        let text = String::from_utf8_lossy(&raw);
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Ok(Answer { status, body })
    }

    pub async fn handshake(&self) -> std::io::Result<Answer> {
        let path = format!(
            "/iclock/cdata?SN={}&options=all&pushver=2.4.1&language=83",
            self.sn
        );
        self.request("GET", &path, b"").await
    }

    /// One ATTLOG POST: the lines joined with LF, ending with a newline as firmware does.
    pub async fn push(&self, lines: &[&str]) -> std::io::Result<Answer> {
        let mut body = lines.join("\n");
        body.push('\n');
        self.push_raw(body.as_bytes()).await
    }

    pub async fn push_raw(&self, body: &[u8]) -> std::io::Result<Answer> {
        let path = format!("/iclock/cdata?SN={}&table=ATTLOG&Stamp=9999", self.sn);
        self.request("POST", &path, body).await
    }

    /// Pushes `lines` in batches of `size`, as a draining backlog does. Fails on the
    /// first answer that is not `OK: <batch size>`.
    pub async fn push_all(&self, lines: &[&str], size: usize) -> std::io::Result<()> {
        for batch in lines.chunks(size.max(1)) {
            let answer = self.push(batch).await?;
            let expected = format!("OK: {}", batch.len());
            if answer.status != 200 || answer.body.trim() != expected {
                return Err(std::io::Error::other(format!(
                    "device {} expected {expected:?}, got {} {:?}",
                    self.sn, answer.status, answer.body
                )));
            }
        }
        Ok(())
    }
}
