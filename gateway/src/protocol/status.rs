//! What a device says about itself: the `INFO=` parameter of its `getrequest` polls,
//! its reply to the `INFO` command, and `pushver=` on handshake.
//!
//! ```text
//! GET /iclock/getrequest?SN=CQZ1&INFO=Ver 8.0.4.2-20191022,7,3,12345,192.168.1.201,10,7,12,3,111
//!        firmware, users, fingerprints, records, IP, FP algorithm, face algorithm,
//!        face templates per face, faces enrolled, functions
//! POST /iclock/devicecmd  (reply to INFO)
//! ID=4&Return=0&CMD=INFO
//! ~DeviceName=MB10-VL
//! FWVersion=Ver 8.0.4.2
//! UserCount=7
//! FPCount=3
//! TransactionCount=12345
//! IPAddress=192.168.1.201
//! ```

/// A device's report about itself; `None` where this report does not say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    pub firmware: Option<String>,
    pub push_version: Option<String>,
    pub user_count: Option<u32>,
    pub fingerprint_count: Option<u32>,
    pub face_count: Option<u32>,
    pub record_count: Option<u32>,
    pub ip: Option<String>,
}

fn text(v: &str) -> Option<String> {
    Some(v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn count(v: &str) -> Option<u32> {
    v.trim().parse().ok()
}

impl Status {
    /// The `INFO=` parameter: comma-separated, positional; missing or unparsable fields
    /// are left unknown.
    pub fn from_info_param(info: &str) -> Self {
        let f: Vec<&str> = info.split(',').collect();
        let at = |i: usize| f.get(i).copied().unwrap_or("");
        Self {
            firmware: text(at(0)),
            push_version: None,
            user_count: count(at(1)),
            fingerprint_count: count(at(2)),
            record_count: count(at(3)),
            ip: text(at(4)),
            face_count: count(at(8)),
        }
    }

    /// The `key=value` lines of an `INFO` reply (the ones `parse_results` did not take);
    /// `None` if none of them is about the device.
    pub fn from_info_reply<'a>(lines: impl IntoIterator<Item = &'a str>) -> Option<Self> {
        let mut s = Self::default();
        for line in lines {
            let Some((key, value)) = line.trim().trim_start_matches('~').split_once('=') else {
                continue;
            };
            match key.trim() {
                "FWVersion" => s.firmware = text(value),
                "PushVersion" => s.push_version = text(value),
                "UserCount" => s.user_count = count(value),
                "FPCount" => s.fingerprint_count = count(value),
                "FaceCount" => s.face_count = count(value),
                "TransactionCount" | "AttLogCount" => s.record_count = count(value),
                "IPAddress" => s.ip = text(value),
                _ => {}
            }
        }
        (s != Self::default()).then_some(s)
    }

    /// `self` updated with what `newer` says.
    pub fn merged(&self, newer: &Self) -> Self {
        fn pick<T: Clone>(old: &Option<T>, new: &Option<T>) -> Option<T> {
            new.clone().or_else(|| old.clone())
        }
        Self {
            firmware: pick(&self.firmware, &newer.firmware),
            push_version: pick(&self.push_version, &newer.push_version),
            user_count: pick(&self.user_count, &newer.user_count),
            fingerprint_count: pick(&self.fingerprint_count, &newer.fingerprint_count),
            face_count: pick(&self.face_count, &newer.face_count),
            record_count: pick(&self.record_count, &newer.record_count),
            ip: pick(&self.ip, &newer.ip),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_info_parameter_is_positional() {
        let s =
            Status::from_info_param("Ver 8.0.4.2-20191022,7,3,12345,192.168.1.201,10,7,12,3,111");
        assert_eq!(s.firmware.as_deref(), Some("Ver 8.0.4.2-20191022"));
        assert_eq!(
            (
                s.user_count,
                s.fingerprint_count,
                s.record_count,
                s.face_count
            ),
            (Some(7), Some(3), Some(12345), Some(3))
        );
        assert_eq!(s.ip.as_deref(), Some("192.168.1.201"));
        let short = Status::from_info_param("Ver 6.60,x");
        assert_eq!(short.firmware.as_deref(), Some("Ver 6.60"));
        assert_eq!(short.user_count, None);
    }

    #[test]
    fn an_info_reply_is_key_value_lines() {
        let s = Status::from_info_reply(
            "~DeviceName=MB10-VL\nFWVersion=Ver 8.0.4.2\nUserCount=7\nTransactionCount=12\nIPAddress=10.0.0.9"
                .lines(),
        )
        .unwrap();
        assert_eq!(s.firmware.as_deref(), Some("Ver 8.0.4.2"));
        assert_eq!((s.user_count, s.record_count), (Some(7), Some(12)));
        assert_eq!(Status::from_info_reply(["junk", "Other=1"]), None);
        let merged = Status::from_info_param("Ver 1,1,1,1,ip").merged(&s);
        assert_eq!(merged.record_count, Some(12));
        assert_eq!(merged.fingerprint_count, Some(1));
    }
}
