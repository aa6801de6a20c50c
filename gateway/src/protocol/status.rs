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

use std::collections::BTreeMap;

use chrono::NaiveDateTime;

use super::options::option;

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
    pub device_type: Option<String>,
    pub device_name: Option<String>,
    pub mac: Option<String>,
    /// The device's clock, as it said it (local time).
    pub device_time: Option<NaiveDateTime>,
    /// Device clock minus server clock in the binding's zone, seconds.
    pub clock_drift_seconds: Option<i64>,
    /// What the gateway last told the device its UTC offset is, in minutes.
    pub utc_offset_told_minutes: Option<i32>,
    /// Everything the device said in `key=value` form.
    pub options: BTreeMap<String, String>,
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
            ..Self::default()
        }
    }

    /// A `key=value` list the device sent about itself (registration, `table=options`,
    /// a `GET OPTIONS` reply): the fields it names, and the whole list.
    pub fn from_options(options: BTreeMap<String, String>) -> Self {
        let get = |keys: &[&str]| option(&options, keys).map(str::to_owned);
        let number = |keys: &[&str]| option(&options, keys).and_then(count);
        Self {
            firmware: get(&["FWVersion", "FirmVer"]),
            push_version: get(&["PushVersion"]),
            user_count: number(&["UserCount"]),
            fingerprint_count: number(&["FPCount", "FingerCount"]),
            face_count: number(&["FaceCount"]),
            record_count: number(&["TransactionCount", "AttLogCount"]),
            ip: get(&["IPAddress"]),
            device_type: get(&["DeviceType"]),
            device_name: get(&["DeviceName"]),
            mac: get(&["MAC", "MACAddress"]),
            device_time: option(&options, &["DeviceTime", "DateTime"])
                .and_then(super::time::parse_local),
            options,
            ..Self::default()
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
                "DeviceName" => s.device_name = text(value),
                "MAC" => s.mac = text(value),
                "DeviceTime" | "DateTime" => s.device_time = super::time::parse_local(value),
                _ => {}
            }
        }
        (s != Self::default()).then_some(s)
    }

    /// The event recording this status.
    pub fn event(&self, sn: &schemas::ids::DeviceSn) -> schemas::events::DeviceStatusReported {
        schemas::events::DeviceStatusReported {
            sn: sn.clone(),
            firmware: self.firmware.clone(),
            user_count: self.user_count,
            fingerprint_count: self.fingerprint_count,
            face_count: self.face_count,
            record_count: self.record_count,
            ip: self.ip.clone(),
            push_version: self.push_version.clone(),
            device_type: self.device_type.clone(),
            device_name: self.device_name.clone(),
            mac: self.mac.clone(),
            device_time: self.device_time,
            clock_drift_seconds: self.clock_drift_seconds,
            utc_offset_told_minutes: self.utc_offset_told_minutes,
            options: self.options.clone(),
        }
    }

    /// The status an event recorded.
    pub fn from_event(e: &schemas::events::DeviceStatusReported) -> Self {
        Self {
            firmware: e.firmware.clone(),
            push_version: e.push_version.clone(),
            user_count: e.user_count,
            fingerprint_count: e.fingerprint_count,
            face_count: e.face_count,
            record_count: e.record_count,
            ip: e.ip.clone(),
            device_type: e.device_type.clone(),
            device_name: e.device_name.clone(),
            mac: e.mac.clone(),
            device_time: e.device_time,
            clock_drift_seconds: e.clock_drift_seconds,
            utc_offset_told_minutes: e.utc_offset_told_minutes,
            options: e.options.clone(),
        }
    }

    /// `self` updated with what `newer` says.
    pub fn merged(&self, newer: &Self) -> Self {
        fn pick<T: Clone>(old: &Option<T>, new: &Option<T>) -> Option<T> {
            new.clone().or_else(|| old.clone())
        }
        let mut options = self.options.clone();
        options.extend(newer.options.clone());
        Self {
            firmware: pick(&self.firmware, &newer.firmware),
            push_version: pick(&self.push_version, &newer.push_version),
            user_count: pick(&self.user_count, &newer.user_count),
            fingerprint_count: pick(&self.fingerprint_count, &newer.fingerprint_count),
            face_count: pick(&self.face_count, &newer.face_count),
            record_count: pick(&self.record_count, &newer.record_count),
            ip: pick(&self.ip, &newer.ip),
            device_type: pick(&self.device_type, &newer.device_type),
            device_name: pick(&self.device_name, &newer.device_name),
            mac: pick(&self.mac, &newer.mac),
            device_time: pick(&self.device_time, &newer.device_time),
            clock_drift_seconds: pick(&self.clock_drift_seconds, &newer.clock_drift_seconds),
            utc_offset_told_minutes: pick(
                &self.utc_offset_told_minutes,
                &newer.utc_offset_told_minutes,
            ),
            options,
        }
    }

    /// What is worth recording: the device clock itself changes every second, so two
    /// reports that differ only in it (and a drift within a minute) are the same.
    pub fn same_as(&self, other: &Self) -> bool {
        let drift_minutes = |s: &Self| s.clock_drift_seconds.map(|d| d.div_euclid(60));
        Self {
            device_time: None,
            clock_drift_seconds: drift_minutes(self),
            ..self.clone()
        } == Self {
            device_time: None,
            clock_drift_seconds: drift_minutes(other),
            ..other.clone()
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
