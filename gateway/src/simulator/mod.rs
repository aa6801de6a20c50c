//! Device simulators that speak as firmware does: HTTP/1.1 over a fresh connection, no
//! Content-Type, TAB-separated lines, `Stamp` in the query. Used by the tests,
//! `attendance simulate` and the benchmarks.
//!
//! - [`Device`] sends what it is told, including requests no well-behaved client
//!   sends ([`Device::raw`]: any bytes, a wrong or missing `Content-Length`).
//! - [`Firmware`] behaves like an attendance machine of a chosen [`Variant`]: it keeps
//!   its own records with their stamps and its upload cursor, honours (or ignores) the
//!   server's stamps on reconnecting, goes offline and catches up, re-sends its whole
//!   history, polls for commands and carries them out.
//! - [`AccessFirmware`] is Security-PUSH (access-control) firmware: it registers,
//!   fetches its configuration, pushes `rtlog` records as they happen, and answers
//!   queries through `querydata`.

mod access;
mod firmware;

pub use access::AccessFirmware;
pub use firmware::{FIRMWARE_BATCH, Firmware, Polled, Variant};

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, Clone)]
pub struct Device {
    pub addr: SocketAddr,
    pub sn: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    /// The answers in `raw`, one after another, each as long as its `Content-Length`.
    pub fn parse_all(raw: &[u8]) -> Vec<Self> {
        let mut answers = Vec::new();
        let mut rest = raw;
        while let Some(end) = rest.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&rest[..end]).into_owned();
            let status = head
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let length = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.trim()
                        .eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())
                        .flatten()
                })
                .unwrap_or(rest.len() - end - 4);
            let body_end = (end + 4 + length).min(rest.len());
            answers.push(Self {
                status,
                body: String::from_utf8_lossy(&rest[end + 4..body_end]).into_owned(),
            });
            rest = &rest[body_end..];
        }
        answers
    }
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
        Ok(Answer::parse_all(&raw)
            .into_iter()
            .next()
            .unwrap_or(Answer {
                status: 0,
                body: String::new(),
            }))
    }

    /// Writes `bytes` as they are (a head and body of the caller's making), closes the
    /// writing side if `half_close` (as firmware that sends no `Content-Length` does),
    /// and returns every answer the server gave before it closed.
    pub async fn raw(&self, bytes: &[u8], half_close: bool) -> std::io::Result<Vec<Answer>> {
        let mut stream = TcpStream::connect(self.addr).await?;
        stream.write_all(bytes).await?;
        if half_close {
            stream.shutdown().await?;
        }
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        Ok(Answer::parse_all(&raw))
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
        self.push_table("ATTLOG", body).await
    }

    /// One POST to `table` (`ATTLOG`, `OPERLOG`, `BIODATA`, `ATTPHOTO`, ...).
    pub async fn push_table(&self, table: &str, body: &[u8]) -> std::io::Result<Answer> {
        let path = format!("/iclock/cdata?SN={}&table={table}&Stamp=9999", self.sn);
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

/// The real device exports committed with the source (pseudonymised; see their
/// PROVENANCE.md): what `attendance bench ingest` sends by default.
pub const REAL_DEVICE_EXPORTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/real-devices");
