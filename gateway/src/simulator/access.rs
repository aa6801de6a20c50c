//! Security-PUSH firmware (access control: SpeedFace, ProFace, SenseFace in access
//! mode): it registers, fetches its configuration, pushes each event as it happens
//! (`table=rtlog`), polls for commands in access syntax and answers `DATA QUERY`
//! through `querydata`.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;

use super::{Answer, Device};

#[derive(Debug, Clone)]
pub struct AccessFirmware {
    pub device: Device,
    /// rtlog lines not yet acknowledged, oldest first.
    pub pending: Vec<String>,
    /// Every record it made, for `DATA QUERY tablename=transaction`.
    pub log: Vec<String>,
    pub registry_code: Option<String>,
    pub session_id: Option<String>,
    /// Pin → name, as `DATA UPDATE user` left it.
    pub users: BTreeMap<String, String>,
    index: u64,
}

impl AccessFirmware {
    pub fn new(device: Device) -> Self {
        Self {
            device,
            pending: Vec::new(),
            log: Vec::new(),
            registry_code: None,
            session_id: None,
            users: BTreeMap::new(),
            index: 0,
        }
    }

    fn record(&mut self, line: String) {
        self.log.push(line.clone());
        self.pending.push(line);
    }

    /// A person verified at the door: what SpeedFace firmware sends for an ordinary
    /// face punch (event 3, verify type 15).
    pub fn punch(&mut self, pin: &str, at: NaiveDateTime) {
        self.index += 1;
        let line = format!(
            "time={}\tpin={pin}\tcardno=0\teventaddr=1\tevent=3\tinoutstatus=0\tverifytype=15\tindex={}\tsitecode=0\tlinkid=0\tmaskflag=0\ttemperature=0\tconvtemperature=0",
            at.format("%Y-%m-%d %H:%M:%S"),
            self.index
        );
        self.record(line);
    }

    /// Something that is not a punch: the device starting (event 206, no person), or a
    /// person refused (event 27, not registered).
    pub fn door_event(&mut self, at: NaiveDateTime, pin: &str, event: u16) {
        self.index += 1;
        let line = format!(
            "time={}\tpin={pin}\tcardno=0\teventaddr=1\tevent={event}\tinoutstatus=2\tverifytype=200\tindex={}",
            at.format("%Y-%m-%d %H:%M:%S"),
            self.index
        );
        self.record(line);
    }

    /// `POST /iclock/registry` with what the device says of itself.
    pub async fn register(&mut self) -> std::io::Result<Answer> {
        let path = format!("/iclock/registry?SN={}", self.device.sn);
        let body = "DeviceType=acc,~DeviceName=SpeedFace-V5L,FirmVer=ZAM180-NF-Ver1.1.17,PushVersion=Ver 3.1.2,MAC=00:17:61:11:ad:4f,CommType=ethernet,MaxPackageSize=2048000,LockCount=1,ReaderCount=2,IPAddress=192.168.1.201,~MaxUserCount=30000";
        let answer = self.device.request("POST", &path, body.as_bytes()).await?;
        if answer.status == 200 {
            self.registry_code = answer
                .body
                .trim()
                .strip_prefix("RegistryCode=")
                .map(str::to_owned);
        }
        Ok(answer)
    }

    /// `POST /iclock/push`: its configuration and session id.
    pub async fn fetch_config(&mut self) -> std::io::Result<Answer> {
        let path = format!("/iclock/push?SN={}", self.device.sn);
        let answer = self.device.request("POST", &path, b"").await?;
        self.session_id = answer
            .body
            .lines()
            .find_map(|l| l.strip_prefix("SessionID="))
            .map(str::to_owned);
        Ok(answer)
    }

    /// The access handshake: `registry=ok` and the configuration for a registered
    /// device.
    pub async fn handshake(&self) -> std::io::Result<Answer> {
        let path = format!(
            "/iclock/cdata?SN={}&options=all&pushver=3.1.2&DeviceType=acc&PushOptionsFlag=1&language=83",
            self.device.sn
        );
        self.device.request("GET", &path, b"").await
    }

    /// Pushes each pending record on its own, as real-time firmware does; stops at the
    /// first answer that is not `OK`. Returns the records acknowledged.
    pub async fn sync(&mut self) -> std::io::Result<usize> {
        let mut sent = 0;
        while let Some(line) = self.pending.first() {
            let path = format!("/iclock/cdata?SN={}&table=rtlog", self.device.sn);
            let answer = self
                .device
                .request("POST", &path, format!("{line}\r\n").as_bytes())
                .await?;
            if answer.status != 200 || answer.body.trim() != "OK" {
                return Err(std::io::Error::other(format!(
                    "{} answered {} {:?}",
                    self.device.sn, answer.status, answer.body
                )));
            }
            self.pending.remove(0);
            sent += 1;
        }
        Ok(sent)
    }

    /// `GET /iclock/rtdata?type=time`.
    pub async fn time(&self) -> std::io::Result<Answer> {
        let path = format!("/iclock/rtdata?SN={}&type=time", self.device.sn);
        self.device.request("GET", &path, b"").await
    }

    /// Polls `getrequest` and carries out what it can: user updates and deletes, and
    /// queries, whose answers go through `querydata` before the result.
    pub async fn poll(&mut self) -> std::io::Result<Vec<String>> {
        let path = format!("/iclock/getrequest?SN={}", self.device.sn);
        let answer = self.device.request("GET", &path, b"").await?;
        let mut commands = Vec::new();
        let mut results = String::new();
        for line in answer.body.lines().filter(|l| l.starts_with("C:")) {
            commands.push(line.to_owned());
            let mut parts = line.splitn(3, ':');
            let (_, Some(id), Some(command)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            // `DATA UPDATE user CardNo=\tPin=..`: fields after the table name, by TAB.
            let fields = command.splitn(4, ' ').nth(3).unwrap_or("");
            let field = |name: &str| {
                fields
                    .split('\t')
                    .find_map(|f| f.strip_prefix(name))
                    .map(str::to_owned)
            };
            let (code, verb) = if command.starts_with("DATA UPDATE user ") {
                let pin = field("Pin=").unwrap_or_default();
                self.users.insert(pin, field("Name=").unwrap_or_default());
                (0, "DATA UPDATE")
            } else if command.starts_with("DATA DELETE user ") {
                self.users.remove(&field("Pin=").unwrap_or_default());
                (0, "DATA DELETE")
            } else if command.starts_with("DATA QUERY tablename=user") {
                let lines: Vec<String> = self
                    .users
                    .iter()
                    .enumerate()
                    .map(|(uid, (pin, name))| {
                        format!("user uid={}\tcardno=\tpin={pin}\tpassword=\tgroup=1\tstarttime=0\tendtime=0\tname={name}\tprivilege=0\tdisable=0\tverify=0", uid + 1)
                    })
                    .collect();
                let path = format!(
                    "/iclock/querydata?SN={}&type=tabledata&cmdid={id}&tablename=user&count={}&packcnt=1&packidx=1",
                    self.device.sn,
                    lines.len()
                );
                self.device
                    .request("POST", &path, lines.join("\n").as_bytes())
                    .await?;
                (lines.len() as i32, "DATA QUERY")
            } else {
                (-708, "UNKNOWN")
            };
            results.push_str(&format!("ID={id}&Return={code}&CMD={verb}\n"));
        }
        if !results.is_empty() {
            let path = format!("/iclock/devicecmd?SN={}", self.device.sn);
            self.device
                .request("POST", &path, results.as_bytes())
                .await?;
        }
        Ok(commands)
    }
}
