//! Device commands on the wire: `C:<id>:<command>` lines served on `getrequest`, and the
//! `ID=<id>&Return=<code>&CMD=<verb>` results devices post to `devicecmd`.
//!
//! Attendance firmware and Security-PUSH (access) firmware name the same things
//! differently (`DATA UPDATE USERINFO PIN=..` against `DATA UPDATE user Pin=..`; access
//! firmware refuses the attendance table names with -629), so a command is rendered
//! for the device's [`Dialect`].

use schemas::events::{DeviceCommand, DevicePrivilege};

use super::Dialect;

/// The command text after `C:<id>:`.
pub fn render(command: &DeviceCommand, dialect: Dialect) -> String {
    // TAB and line breaks would end the field or the command.
    let clean = |text: &str| -> String { text.chars().filter(|c| !c.is_control()).collect() };
    // Bits 1-3 the level, bit 0 "disabled" (0 user, 2 registrar, 14 admin; +1 disabled).
    let pri = |privilege: &DevicePrivilege| -> u8 {
        match privilege {
            DevicePrivilege::User => 0,
            DevicePrivilege::Registrar => 2,
            DevicePrivilege::Admin => 14,
        }
    };
    match (command, dialect) {
        (
            DeviceCommand::UpdateUser {
                badge_number,
                name,
                privilege,
                card,
                disabled,
            },
            Dialect::Attendance,
        ) => {
            let mut line = format!(
                "DATA UPDATE USERINFO PIN={badge_number}\tName={}\tPri={}",
                clean(name),
                pri(privilege) | u8::from(*disabled)
            );
            if let Some(card) = card {
                line.push_str(&format!("\tCard={}", clean(card)));
            }
            line
        }
        (
            DeviceCommand::UpdateUser {
                badge_number,
                name,
                privilege,
                card,
                disabled,
            },
            Dialect::Access,
        ) => format!(
            "DATA UPDATE user CardNo={}\tPin={badge_number}\tPassword=\tGroup=1\tStartTime=0\tEndTime=0\tName={}\tPrivilege={}",
            card.as_deref().map(clean).unwrap_or_default(),
            clean(name),
            pri(privilege) | u8::from(*disabled)
        ),
        (DeviceCommand::DeleteUser { badge_number }, Dialect::Attendance) => {
            format!("DATA DELETE USERINFO PIN={badge_number}")
        }
        (DeviceCommand::DeleteUser { badge_number }, Dialect::Access) => {
            format!("DATA DELETE user Pin={badge_number}")
        }
        (DeviceCommand::QueryAttendance { start, end, .. }, Dialect::Attendance) => format!(
            "DATA QUERY ATTLOG StartTime={}\tEndTime={}",
            start.format("%Y-%m-%d %H:%M:%S"),
            end.format("%Y-%m-%d %H:%M:%S")
        ),
        // Access firmware filters its records by field values, not time ranges: the
        // whole log comes again, and its records count once.
        (DeviceCommand::QueryAttendance { .. }, Dialect::Access) => {
            "DATA QUERY tablename=transaction,fielddesc=*,filter=*".into()
        }
        (DeviceCommand::QueryUsers { badge_number }, Dialect::Attendance) => match badge_number {
            Some(pin) => format!("DATA QUERY USERINFO PIN={pin}"),
            None => "DATA QUERY USERINFO".into(),
        },
        (DeviceCommand::QueryUsers { badge_number }, Dialect::Access) => match badge_number {
            Some(pin) => format!("DATA QUERY tablename=user,fielddesc=*,filter=Pin={pin}"),
            None => "DATA QUERY tablename=user,fielddesc=*,filter=*".into(),
        },
        (DeviceCommand::SetTimeZone { utc_offset_minutes }, Dialect::Attendance) => format!(
            "SET OPTION TimeZone={}",
            super::time::time_zone_option(utc_offset_minutes * 60)
        ),
        (DeviceCommand::SetTimeZone { utc_offset_minutes }, Dialect::Access) => format!(
            "SET OPTIONS MachineTZ={}",
            super::time::server_tz(utc_offset_minutes * 60)
        ),
        (DeviceCommand::ClearData, _) => "CLEAR DATA".into(),
        (DeviceCommand::Info, Dialect::Attendance) => "INFO".into(),
        (DeviceCommand::Info, Dialect::Access) => {
            "GET OPTIONS ~SerialNumber,FirmVer,~DeviceName,UserCount,TransactionCount,FPCount,FaceCount,IPAddress,MAC".into()
        }
        (DeviceCommand::Check, _) => "CHECK".into(),
        (DeviceCommand::Reboot, Dialect::Attendance) => "REBOOT".into(),
        (DeviceCommand::Reboot, Dialect::Access) => "CONTROL DEVICE 03000000".into(),
    }
}

/// Whether the device goes away after carrying out `command` (it restarts): nothing
/// may follow it in a reply.
pub fn ends_session(command: &DeviceCommand) -> bool {
    match command {
        DeviceCommand::Reboot => true,
        DeviceCommand::UpdateUser { .. }
        | DeviceCommand::DeleteUser { .. }
        | DeviceCommand::QueryAttendance { .. }
        | DeviceCommand::QueryUsers { .. }
        | DeviceCommand::SetTimeZone { .. }
        | DeviceCommand::ClearData
        | DeviceCommand::Info
        | DeviceCommand::Check => false,
    }
}

/// One result line of a `devicecmd` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandResult {
    pub id: u64,
    pub return_code: i32,
    pub verb: Option<String>,
}

/// Parses every result in a body (several per body, one a line, `&`-separated fields).
/// Lines without a numeric `ID` and `Return` are skipped and returned as such.
pub fn parse_results(body: &str) -> (Vec<CommandResult>, Vec<String>) {
    let mut results = Vec::new();
    let mut skipped = Vec::new();
    for line in body.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let mut id = None;
        let mut code = None;
        let mut verb = None;
        for pair in line.split('&') {
            let Some((key, v)) = pair.split_once('=') else {
                continue;
            };
            match key.trim() {
                k if k.eq_ignore_ascii_case("ID") => id = v.trim().parse::<u64>().ok(),
                k if k.eq_ignore_ascii_case("Return") => code = v.trim().parse::<i32>().ok(),
                k if k.eq_ignore_ascii_case("CMD") => {
                    verb = Some(v.trim().to_owned()).filter(|v| !v.is_empty());
                }
                _ => {}
            }
        }
        match (id, code) {
            (Some(id), Some(return_code)) => results.push(CommandResult {
                id,
                return_code,
                verb,
            }),
            _ => skipped.push(line.to_owned()),
        }
    }
    (results, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use schemas::ids::BadgeNumber;

    #[test]
    fn commands_render_as_firmware_expects() {
        let user = DeviceCommand::UpdateUser {
            badge_number: BadgeNumber::from("1001"),
            name: "Li\tWei".into(),
            privilege: DevicePrivilege::Admin,
            card: None,
            disabled: false,
        };
        assert_eq!(
            render(&user, Dialect::Attendance),
            "DATA UPDATE USERINFO PIN=1001\tName=LiWei\tPri=14"
        );
        let disabled = DeviceCommand::UpdateUser {
            privilege: DevicePrivilege::User,
            disabled: true,
            badge_number: BadgeNumber::from("1002"),
            name: "Wang".into(),
            card: None,
        };
        assert_eq!(
            render(&disabled, Dialect::Attendance),
            "DATA UPDATE USERINFO PIN=1002\tName=Wang\tPri=1"
        );
        assert_eq!(
            render(&user, Dialect::Access),
            "DATA UPDATE user CardNo=\tPin=1001\tPassword=\tGroup=1\tStartTime=0\tEndTime=0\tName=LiWei\tPrivilege=14"
        );
        let users = DeviceCommand::QueryUsers { badge_number: None };
        assert_eq!(render(&users, Dialect::Attendance), "DATA QUERY USERINFO");
        assert_eq!(
            render(&users, Dialect::Access),
            "DATA QUERY tablename=user,fielddesc=*,filter=*"
        );
        let zone = DeviceCommand::SetTimeZone {
            utc_offset_minutes: 330,
        };
        assert_eq!(
            render(&zone, Dialect::Attendance),
            "SET OPTION TimeZone=330"
        );
        let day = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        let query = DeviceCommand::QueryAttendance {
            start: day.and_hms_opt(0, 0, 0).unwrap(),
            end: day.and_hms_opt(23, 59, 59).unwrap(),
            badge_numbers: vec![],
        };
        assert_eq!(
            render(&query, Dialect::Attendance),
            "DATA QUERY ATTLOG StartTime=2026-11-01 00:00:00\tEndTime=2026-11-01 23:59:59"
        );
        assert_eq!(
            render(&DeviceCommand::ClearData, Dialect::Attendance),
            "CLEAR DATA"
        );
    }

    #[test]
    fn several_results_per_body_and_junk_skipped() {
        let body = "ID=1&Return=0&CMD=INFO\r\nID=2&Return=-1002&CMD=DATA\nID=x&Return=0\n\n";
        let (results, skipped) = parse_results(body);
        assert_eq!(
            results,
            [
                CommandResult {
                    id: 1,
                    return_code: 0,
                    verb: Some("INFO".into())
                },
                CommandResult {
                    id: 2,
                    return_code: -1002,
                    verb: Some("DATA".into())
                },
            ]
        );
        assert_eq!(skipped, ["ID=x&Return=0"]);
    }
}
