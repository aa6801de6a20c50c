//! An attendance machine: its records with their stamps, the cursor of what the server
//! acknowledged, its roster, its clock's zone, and whether it can reach the server.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;

use super::{Answer, Device};

/// How many records firmware sends per ATTLOG POST.
pub const FIRMWARE_BATCH: usize = 128;

/// Which firmware a machine runs: what it says on handshake, how it writes records,
/// what it does with the server's stamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// PUSH 2.x attendance firmware (`pushver=2.4.1`): `ATTLOGStamp` in the handshake,
    /// `fields` fields per line (5, 6, 7, 10 or 11; the 11th a record sequence).
    Push2 { fields: usize },
    /// Firmware older than `pushver`: knows its cursor as `Stamp=` in the handshake.
    Legacy,
    /// TFT firmware writing 16 fields, the 11th a job code.
    Tft16,
}

impl Variant {
    fn pushver(self) -> Option<&'static str> {
        match self {
            Self::Push2 { .. } | Self::Tft16 => Some("2.4.1"),
            Self::Legacy => None,
        }
    }

    fn stamp_key(self) -> &'static str {
        match self {
            Self::Push2 { .. } | Self::Tft16 => "ATTLOGStamp",
            Self::Legacy => "Stamp",
        }
    }
}

/// A machine: its record log, the cursor of what the server acknowledged, its roster,
/// and whether it can reach the server.
#[derive(Debug, Clone)]
pub struct Firmware {
    pub device: Device,
    pub variant: Variant,
    /// ATTLOG lines, oldest first, as the device stores them; a record's stamp is its
    /// place in this list, from 1.
    pub records: Vec<String>,
    /// `records[..sent]` were acknowledged: the stamp of the last one acknowledged.
    pub sent: usize,
    pub online: bool,
    /// Whether it resumes from the stamp the server echoes on handshake (firmware that
    /// does not re-sends everything after every reconnect).
    pub honours_stamp: bool,
    /// PIN → name, as `DATA UPDATE USERINFO` left it.
    pub users: BTreeMap<String, String>,
    /// What the last handshake answered, by key.
    pub options: BTreeMap<String, String>,
    /// `TimeZone` as the server last told it (handshake or `SET OPTION`).
    pub time_zone: Option<String>,
    /// Every ATTLOG line it ever sent, re-sends included: what reconnecting costs.
    pub lines_sent: usize,
    /// Times it restarted on `REBOOT`.
    pub reboots: usize,
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
    /// A PUSH 2.x machine writing `fields` fields a line, honouring stamps.
    pub fn new(device: Device, fields: usize) -> Self {
        Self::of(device, Variant::Push2 { fields })
    }

    pub fn of(device: Device, variant: Variant) -> Self {
        Self {
            device,
            variant,
            records: Vec::new(),
            sent: 0,
            online: true,
            honours_stamp: true,
            users: BTreeMap::new(),
            options: BTreeMap::new(),
            time_zone: None,
            lines_sent: 0,
            reboots: 0,
        }
    }

    /// Records a punch on the device (state 0 in, 1 out; verify 1 fingerprint, 15 face).
    pub fn punch(&mut self, badge: &str, at: NaiveDateTime, state: u8, verify: u8) {
        let time = at.format("%Y-%m-%d %H:%M:%S").to_string();
        let seq = (self.records.len() + 1).to_string();
        let (state, verify) = (state.to_string(), verify.to_string());
        let line = match self.variant {
            Variant::Push2 { fields } => {
                let mut f = vec![
                    badge,
                    time.as_str(),
                    state.as_str(),
                    verify.as_str(),
                    "0",
                    "0",
                    "0",
                    "0",
                    "0",
                    "0",
                    seq.as_str(),
                ];
                f.truncate(fields.clamp(5, 11));
                f.join("\t")
            }
            Variant::Legacy => [
                badge,
                time.as_str(),
                state.as_str(),
                verify.as_str(),
                "0",
                "0",
            ]
            .join("\t"),
            // The 11th field is the job the person clocked onto.
            Variant::Tft16 => [
                badge,
                time.as_str(),
                state.as_str(),
                verify.as_str(),
                "0",
                "0",
                "0",
                "0",
                "0",
                "0",
                "8",
                "0",
                "0",
                "0",
                "0",
                "0",
            ]
            .join("\t"),
        };
        self.records.push(line);
    }

    /// Enrols a finger at the device and uploads it as BIODATA firmware does: the
    /// finger in `No`, which of its templates in `Index`.
    pub async fn enroll_finger(
        &mut self,
        pin: &str,
        finger: u8,
        template: u8,
    ) -> std::io::Result<Answer> {
        let line = format!(
            "BIODATA Pin={pin}\tNo={finger}\tIndex={template}\tValid=1\tDuress=0\tType=1\tMajorVer=12\tMinorVer=0\tFormat=0\tTmp=TUlDUk9TT0ZU\n"
        );
        let path = format!(
            "/iclock/cdata?SN={}&table=BIODATA&Stamp=9999",
            self.device.sn
        );
        self.device.request("POST", &path, line.as_bytes()).await
    }

    /// The handshake: reads the options block, and with it the server's stamp.
    pub async fn handshake(&mut self) -> std::io::Result<Answer> {
        let mut path = format!(
            "/iclock/cdata?SN={}&options=all&language=83",
            self.device.sn
        );
        if let Some(pushver) = self.variant.pushver() {
            path.push_str(&format!("&pushver={pushver}&PushOptionsFlag=1"));
        }
        let answer = self.device.request("GET", &path, b"").await?;
        if answer.status == 200 {
            self.options = answer
                .body
                .lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .collect();
            self.time_zone = self.options.get("TimeZone").cloned();
            if self.honours_stamp
                && let Some(stamp) = self.options.get(self.variant.stamp_key())
            {
                // A number: resume after it; `None`, 0 or nonsense: from the start.
                self.sent = stamp.parse::<usize>().unwrap_or(0).min(self.records.len());
            }
        }
        Ok(answer)
    }

    /// Uploads what the server has not acknowledged, in firmware-sized batches, each
    /// with the stamp of its last record, moving the cursor only on `OK`. Offline,
    /// nothing happens. Returns the records sent.
    pub async fn sync(&mut self) -> std::io::Result<usize> {
        if !self.online {
            return Ok(0);
        }
        let start = self.sent;
        while self.sent < self.records.len() {
            let end = (self.sent + FIRMWARE_BATCH).min(self.records.len());
            let mut body = self.records[self.sent..end].join("\n");
            body.push('\n');
            let path = format!(
                "/iclock/cdata?SN={}&table=ATTLOG&Stamp={end}",
                self.device.sn
            );
            let answer = self.device.request("POST", &path, body.as_bytes()).await?;
            self.lines_sent += end - self.sent;
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
    pub async fn resend_all(&mut self, batch: usize) -> std::io::Result<usize> {
        let lines: Vec<&str> = self.records.iter().map(String::as_str).collect();
        self.device.push_all(&lines, batch).await?;
        self.lines_sent += lines.len();
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
        if command.starts_with("DATA QUERY USERINFO") {
            // The users come back as an upload of untagged lines, then the result.
            let pin = command.split_once("PIN=").map(|(_, p)| p.trim().to_owned());
            let mut body = String::new();
            for (p, name) in &self.users {
                if pin.as_ref().is_none_or(|wanted| wanted == p) {
                    body.push_str(&format!(
                        "PIN={p}\tName={name}\tPri=0\tPasswd=\tCard=\tGrp=1\n"
                    ));
                }
            }
            let path = format!("/iclock/cdata?SN={}&table=USERINFO", self.device.sn);
            self.device.request("POST", &path, body.as_bytes()).await?;
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
        if let Some(zone) = command.strip_prefix("SET OPTION TimeZone=") {
            self.time_zone = Some(zone.trim().to_owned());
            return Ok((0, "SET OPTION", String::new()));
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
            "REBOOT" => {
                self.reboots += 1;
                Ok((0, "REBOOT", String::new()))
            }
            "CHECK" => Ok((0, "CHECK", String::new())),
            _ => Ok((-1002, "UNKNOWN", String::new())),
        }
    }
}
