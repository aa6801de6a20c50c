//! What the server tells a device about itself, and what a device says about itself.
//!
//! - The attendance handshake (`GET /iclock/cdata?SN=..&options=all`): the options
//!   block, `GET OPTION FROM: <SN>` then `key=value` lines: upload cursors per table
//!   (`ATTLOGStamp`, ...), delays, what to push, `TimeZone`, protocol versions.
//! - Security PUSH (`DeviceType=acc`): the registration answer (`RegistryCode=`), the
//!   configuration of `/iclock/push`, and the handshake of a registered device
//!   (`registry=ok`, ...). No `TimeZone` there: access firmware asks for the time.
//! - What devices send: comma-separated `key=value` lists (registration bodies,
//!   `table=options` uploads, `GET OPTIONS` replies).

use std::collections::BTreeMap;

/// The PUSH protocol version this server speaks, for `ServerVer` and `PushProtVer`.
pub const SERVER_PUSH_VERSION: &str = "2.4.1";
/// The Security-PUSH version this server speaks.
pub const SERVER_SECURITY_PUSH_VERSION: &str = "3.1.2";

/// The parameters a device is asked to push about itself (`PushOptions=`).
pub const PUSH_OPTIONS: &str = "UserCount,TransactionCount,FingerFunOn,FPVersion,FPCount,FaceFunOn,FaceVersion,FaceCount,FvFunOn,FvCount,PvFunOn,PvCount,BioPhotoFun,BioDataFun,PhotoFunOn,~DeviceName,~Platform,FWVersion,IPAddress,MAC,MultiBioDataSupport,MultiBioVersion";

/// Seconds between polls a device is asked to keep (`Delay`, `RequestDelay`).
pub const POLL_DELAY_SECONDS: u32 = 10;

/// Upload cursors known for a device, by upper-case table name.
pub type Stamps = BTreeMap<String, String>;

/// The tables whose cursors the attendance handshake carries, with the key old
/// firmware (no `pushver`) knows them by and what to say when no stamp is stored yet:
/// `None` asks for every record not yet sent here; `9999` for nothing old.
const STAMPED: [(&str, &str, &str); 4] = [
    ("ATTLOG", "Stamp", "None"),
    ("OPERLOG", "OpStamp", "9999"),
    ("ATTPHOTO", "PhotoStamp", "None"),
    ("BIODATA", "", "None"),
];

/// The tables with a cursor in the handshake.
pub fn stamped_tables() -> impl Iterator<Item = &'static str> {
    STAMPED.iter().map(|(table, _, _)| *table)
}

/// The attendance handshake's options block for device `sn`.
///
/// `pushver` is what the device said (`pushver=`); without one it is old firmware,
/// which knows its cursors as `Stamp`, `OpStamp`, `PhotoStamp` and no protocol version
/// keys. `utc_offset_seconds` is the binding zone's offset now.
pub fn render_attendance(
    sn: &str,
    pushver: Option<&str>,
    stamps: &Stamps,
    utc_offset_seconds: i32,
) -> String {
    let mut lines = vec![format!("GET OPTION FROM: {sn}")];
    for (table, legacy, none) in STAMPED {
        let value = stamps.get(table).map_or(none, String::as_str);
        match pushver {
            Some(_) => lines.push(format!("{table}Stamp={value}")),
            None if !legacy.is_empty() => lines.push(format!("{legacy}={value}")),
            None => {}
        }
    }
    lines.extend([
        "ErrorDelay=30".to_owned(),
        format!("Delay={POLL_DELAY_SECONDS}"),
        "TransTimes=00:00;14:05".to_owned(),
        "TransInterval=1".to_owned(),
        "TransFlag=TransData AttLog\tOpLog\tEnrollUser\tChgUser\tEnrollFP\tChgFP\tFACE".to_owned(),
        format!(
            "TimeZone={}",
            super::time::time_zone_option(utc_offset_seconds)
        ),
        "Realtime=1".to_owned(),
        "Encrypt=None".to_owned(),
    ]);
    if let Some(pushver) = pushver {
        lines.extend([
            format!("ServerVer={SERVER_PUSH_VERSION}"),
            format!(
                "PushProtVer={}",
                lower_version(pushver, SERVER_PUSH_VERSION)
            ),
            "PushOptionsFlag=1".to_owned(),
            format!("PushOptions={PUSH_OPTIONS}"),
        ]);
    }
    lines.push(String::new());
    lines.join("\n")
}

/// The lower of two dotted versions (both sides speak the lower one); a version that
/// is not dotted numbers (`Ver 2.0.33S-20220623`) counts as ours.
pub fn lower_version<'a>(theirs: &'a str, ours: &'a str) -> &'a str {
    let parse = |v: &str| -> Option<Vec<u32>> {
        v.trim()
            .split('.')
            .map(|p| p.parse::<u32>().ok())
            .collect::<Option<Vec<u32>>>()
    };
    match (parse(theirs), parse(ours)) {
        (Some(t), Some(o)) if t < o => theirs.trim(),
        _ => ours,
    }
}

/// A Security-PUSH device's session id: stable for its registration, so any gateway
/// instance gives the same one (the device folds it into its token).
pub fn session_id(sn: &str, registry_code: &str) -> String {
    let id = uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        format!("ledgerclock-session:{sn}:{registry_code}").as_bytes(),
    );
    id.simple().to_string().to_uppercase()
}

/// The configuration lines of a Security-PUSH device, as `/iclock/push` sends them.
fn access_config(session: &str) -> Vec<String> {
    vec![
        format!("ServerVersion={SERVER_SECURITY_PUSH_VERSION}"),
        "ServerName=Ledgerclock".to_owned(),
        format!("PushVersion={SERVER_SECURITY_PUSH_VERSION}"),
        format!("PushProtVer={SERVER_SECURITY_PUSH_VERSION}"),
        "ErrorDelay=30".to_owned(),
        format!("RequestDelay={POLL_DELAY_SECONDS}"),
        "TransTimes=00:00;14:00".to_owned(),
        "TransInterval=1".to_owned(),
        "TransTables=User Transaction".to_owned(),
        "Realtime=1".to_owned(),
        format!("SessionID={session}"),
        "TimeoutSec=10".to_owned(),
    ]
}

/// `/iclock/push`'s answer.
pub fn render_push(session: &str) -> String {
    let mut lines = access_config(session);
    lines.push(String::new());
    lines.join("\n")
}

/// A registered Security-PUSH device's handshake answer.
pub fn render_access_handshake(registry_code: &str, session: &str) -> String {
    let mut lines = vec![
        "registry=ok".to_owned(),
        format!("RegistryCode={registry_code}"),
    ];
    lines.extend(access_config(session));
    lines.push(String::new());
    lines.join("\n")
}

/// A `key=value` list a device sends about itself: pairs separated by commas, line
/// breaks, TABs or `&`; keys keep their `~` as sent; values may hold spaces
/// (`FirmVer=Ver 8.0.4.6-20230217`). The first of a repeated key wins.
pub fn parse_device_options(text: &str) -> BTreeMap<String, String> {
    let mut options = BTreeMap::new();
    for pair in text.split([',', '\n', '\r', '\t', '&']) {
        if let Some((key, value)) = pair.split_once('=') {
            let key = key.trim();
            if !key.is_empty() && key.len() <= 64 {
                options
                    .entry(key.to_owned())
                    .or_insert_with(|| value.trim().chars().take(256).collect());
            }
        }
    }
    options
}

/// The value of `key` in a device's options, with or without its `~`, in any case.
pub fn option<'a>(options: &'a BTreeMap<String, String>, keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|wanted| {
        options
            .iter()
            .find(|(k, _)| k.trim_start_matches('~').eq_ignore_ascii_case(wanted))
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_attendance_block_echoes_stored_stamps_and_the_protocol_versions() {
        let stamps = Stamps::from([("ATTLOG".to_owned(), "612345".to_owned())]);
        let block = render_attendance("SN1", Some("2.2.14"), &stamps, 8 * 3600);
        assert!(block.starts_with("GET OPTION FROM: SN1\n"));
        for line in [
            "ATTLOGStamp=612345",
            "OPERLOGStamp=9999",
            "ATTPHOTOStamp=None",
            "BIODATAStamp=None",
            "TimeZone=8",
            "ServerVer=2.4.1",
            "PushProtVer=2.2.14",
            "PushOptionsFlag=1",
        ] {
            assert!(block.lines().any(|l| l == line), "{line} in\n{block}");
        }
        assert!(block.contains("\nPushOptions=UserCount,"));
        let newer = render_attendance("SN1", Some("3.0.1"), &stamps, 19800);
        assert!(newer.lines().any(|l| l == "PushProtVer=2.4.1"));
        assert!(newer.lines().any(|l| l == "TimeZone=330"));
        // Old firmware: its own key names, no version keys.
        let old = render_attendance("SN1", None, &stamps, 8 * 3600);
        assert!(old.lines().any(|l| l == "Stamp=612345"));
        assert!(old.lines().any(|l| l == "OpStamp=9999"));
        assert!(!old.contains("ServerVer") && !old.contains("BIODATA"));
    }

    #[test]
    fn versions_and_options() {
        assert_eq!(lower_version("2.2.14", "2.4.1"), "2.2.14");
        assert_eq!(lower_version("2.4.1", "2.4.1"), "2.4.1");
        assert_eq!(lower_version("Ver 2.0.33S-20220623", "2.4.1"), "2.4.1");
        let options = parse_device_options(
            "DeviceType=acc,~DeviceName=SenseFace 2A,FirmVer=ZAM70-NF24HA-Ver3.0.15,PushVersion=Ver 3.0.4S-20240809\r\nMAC=00:17:61:11:ad:4f,junk,=x",
        );
        assert_eq!(option(&options, &["DeviceName"]), Some("SenseFace 2A"));
        assert_eq!(
            option(&options, &["firmver"]),
            Some("ZAM70-NF24HA-Ver3.0.15")
        );
        assert_eq!(option(&options, &["MAC"]), Some("00:17:61:11:ad:4f"));
        assert_eq!(options.len(), 5);
    }

    #[test]
    fn security_push_answers() {
        let session = session_id("SN1", "abc");
        assert_eq!(session, session_id("SN1", "abc"));
        assert_ne!(session, session_id("SN2", "abc"));
        let handshake = render_access_handshake("abc", &session);
        assert!(handshake.starts_with("registry=ok\nRegistryCode=abc\n"));
        assert!(handshake.contains(&format!("\nSessionID={session}\n")));
        assert!(!handshake.contains("GET OPTION FROM"));
        assert!(render_push(&session).contains("TransTables=User Transaction\n"));
    }
}
