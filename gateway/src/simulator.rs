//! A device simulator that speaks as firmware does: HTTP/1.1 over a fresh connection, no
//! Content-Type, TAB-separated ATTLOG lines, `Stamp` in the query. [`Device`] sends what
//! it is told; [`Firmware`] behaves like a machine: it keeps its own records and upload
//! cursor, goes offline and catches up, re-sends its whole history, polls for commands
//! and carries them out. Used by the tests, `attendance simulate` and
//! `attendance bench ingest`.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use chrono::NaiveDateTime;

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

/// How many records firmware sends per ATTLOG POST.
pub const FIRMWARE_BATCH: usize = 128;

/// A machine: its record log, the cursor of what the server acknowledged (`Stamp`), its
/// roster, and whether it can reach the server.
#[derive(Debug, Clone)]
pub struct Firmware {
    pub device: Device,
    /// ATTLOG lines, oldest first, as the device stores them.
    pub records: Vec<String>,
    /// `records[..sent]` were acknowledged.
    pub sent: usize,
    pub online: bool,
    /// PIN → name, as `DATA UPDATE USERINFO` left it.
    pub users: BTreeMap<String, String>,
    /// Fields per ATTLOG line this firmware writes: 5, 6, 7, 10 or 11.
    pub fields: usize,
}

/// What one poll did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Polled {
    /// The commands received, as `C:<id>:<command>` lines.
    pub commands: Vec<String>,
    /// Records sent again for `DATA QUERY ATTLOG`.
    pub resent: usize,
}

impl Firmware {
    pub fn new(device: Device, fields: usize) -> Self {
        Self {
            device,
            records: Vec::new(),
            sent: 0,
            online: true,
            users: BTreeMap::new(),
            fields,
        }
    }

    /// Records a punch on the device (state 0 in, 1 out; verify 1 fingerprint, 15 face).
    pub fn punch(&mut self, badge: &str, at: NaiveDateTime, state: u8, verify: u8) {
        let time = at.format("%Y-%m-%d %H:%M:%S");
        let seq = self.records.len() + 1;
        let mut fields = vec![
            badge.to_owned(),
            time.to_string(),
            state.to_string(),
            verify.to_string(),
            "0".into(),
            "0".into(),
            "0".into(),
            "0".into(),
            "0".into(),
            "0".into(),
            seq.to_string(),
        ];
        fields.truncate(self.fields.clamp(5, 11));
        self.records.push(fields.join("\t"));
    }

    pub async fn handshake(&self) -> std::io::Result<Answer> {
        self.device.handshake().await
    }

    /// Uploads what the server has not acknowledged, in firmware-sized batches, moving
    /// the cursor only on `OK`. Offline, nothing happens. Returns the records sent.
    pub async fn sync(&mut self) -> std::io::Result<usize> {
        if !self.online {
            return Ok(0);
        }
        let start = self.sent;
        while self.sent < self.records.len() {
            let end = (self.sent + FIRMWARE_BATCH).min(self.records.len());
            let batch: Vec<&str> = self.records[self.sent..end]
                .iter()
                .map(String::as_str)
                .collect();
            let answer = self.device.push(&batch).await?;
            if answer.status != 200 {
                // The server could not store it: keep the cursor, try again later.
                return Err(std::io::Error::other(format!(
                    "{} answered {} {:?}",
                    self.device.sn, answer.status, answer.body
                )));
            }
            self.sent = end;
        }
        Ok(self.sent - start)
    }

    /// Sends the whole history again, ignoring the cursor, in batches of `batch`, as
    /// firmware does after a reset or when the server's stamp is not understood.
    pub async fn resend_all(&self, batch: usize) -> std::io::Result<usize> {
        let lines: Vec<&str> = self.records.iter().map(String::as_str).collect();
        self.device.push_all(&lines, batch).await?;
        Ok(lines.len())
    }

    /// Polls `getrequest`, carries out each command and posts its result.
    pub async fn poll(&mut self) -> std::io::Result<Polled> {
        if !self.online {
            return Ok(Polled::default());
        }
        let path = format!("/iclock/getrequest?SN={}", self.device.sn);
        let answer = self.device.request("GET", &path, b"").await?;
        let mut polled = Polled::default();
        let mut results = String::new();
        for line in answer.body.lines().filter(|l| l.starts_with("C:")) {
            polled.commands.push(line.to_owned());
            let mut parts = line.splitn(3, ':');
            let (_, id, command) = (parts.next(), parts.next(), parts.next());
            let (Some(id), Some(command)) = (id, command) else {
                continue;
            };
            let (code, verb, extra) = self.carry_out(command, &mut polled).await?;
            results.push_str(&format!("ID={id}&Return={code}&CMD={verb}\n{extra}"));
        }
        if !results.is_empty() {
            let path = format!("/iclock/devicecmd?SN={}", self.device.sn);
            self.device
                .request("POST", &path, results.as_bytes())
                .await?;
        }
        Ok(polled)
    }

    async fn carry_out(
        &mut self,
        command: &str,
        polled: &mut Polled,
    ) -> std::io::Result<(i32, &'static str, String)> {
        // `DATA <verb> <table> k=v\tk=v...`: values may hold spaces, never TABs.
        let args = command.splitn(4, ' ').nth(3).unwrap_or("");
        let field = |name: &str| {
            args.split('\t')
                .find_map(|f| f.strip_prefix(name))
                .map(str::to_owned)
        };
        if command.starts_with("DATA QUERY ATTLOG ") {
            let start = field("StartTime=").unwrap_or_default();
            let end = field("EndTime=").unwrap_or_default();
            let (start, end) = (start.as_str(), end.as_str());
            let wanted: Vec<&str> = self
                .records
                .iter()
                .filter(|r| {
                    let time = r.split('\t').nth(1).unwrap_or("");
                    start <= time && time <= end
                })
                .map(String::as_str)
                .collect();
            self.device.push_all(&wanted, FIRMWARE_BATCH).await?;
            polled.resent += wanted.len();
            return Ok((0, "DATA", String::new()));
        }
        if command.starts_with("DATA UPDATE USERINFO") {
            let pin = field("PIN=").unwrap_or_default();
            let name = field("Name=").unwrap_or_default();
            self.users.insert(pin, name);
            return Ok((0, "DATA", String::new()));
        }
        if command.starts_with("DATA DELETE USERINFO") {
            let pin = field("PIN=").unwrap_or_default();
            self.users.remove(&pin);
            return Ok((0, "DATA", String::new()));
        }
        match command {
            "CLEAR DATA" => {
                self.records.clear();
                self.users.clear();
                self.sent = 0;
                Ok((0, "CLEAR", String::new()))
            }
            "INFO" => Ok((
                0,
                "INFO",
                format!(
                    "~DeviceName=Simulated\nFWVersion=Ver 8.0.4.2-sim\nUserCount={}\nTransactionCount={}\n",
                    self.users.len(),
                    self.records.len()
                ),
            )),
            "CHECK" | "REBOOT" => Ok((0, "CHECK", String::new())),
            _ => Ok((-1002, "UNKNOWN", String::new())),
        }
    }
}
