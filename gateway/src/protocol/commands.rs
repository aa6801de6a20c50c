//! Device commands on the wire: `C:<id>:<command>` lines served on `getrequest`, and the
//! `ID=<id>&Return=<code>&CMD=<verb>` results devices post to `devicecmd`.

use schemas::events::{DeviceCommand, DevicePrivilege};

/// The command text after `C:<id>:`.
pub fn render(command: &DeviceCommand) -> String {
    match command {
        DeviceCommand::UpdateUser {
            badge_number,
            name,
            privilege,
            card,
        } => {
            let pri = match privilege {
                DevicePrivilege::User => 0,
                DevicePrivilege::Registrar => 2,
                DevicePrivilege::Admin => 14,
            };
            // TAB and line breaks would end the field or the command.
            let name: String = name.chars().filter(|c| !c.is_control()).collect();
            let mut line =
                format!("DATA UPDATE USERINFO PIN={badge_number}\tName={name}\tPri={pri}");
            if let Some(card) = card {
                line.push_str(&format!("\tCard={card}"));
            }
            line
        }
        DeviceCommand::DeleteUser { badge_number } => {
            format!("DATA DELETE USERINFO PIN={badge_number}")
        }
        DeviceCommand::QueryAttendance { start, end, .. } => format!(
            "DATA QUERY ATTLOG StartTime={}\tEndTime={}",
            start.format("%Y-%m-%d %H:%M:%S"),
            end.format("%Y-%m-%d %H:%M:%S")
        ),
        DeviceCommand::ClearData => "CLEAR DATA".into(),
        DeviceCommand::Info => "INFO".into(),
        DeviceCommand::Check => "CHECK".into(),
        DeviceCommand::Reboot => "REBOOT".into(),
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
            match pair.split_once('=') {
                Some(("ID", v)) => id = v.trim().parse::<u64>().ok(),
                Some(("Return", v)) => code = v.trim().parse::<i32>().ok(),
                Some(("CMD", v)) => verb = Some(v.trim().to_owned()).filter(|v| !v.is_empty()),
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
        };
        assert_eq!(
            render(&user),
            "DATA UPDATE USERINFO PIN=1001\tName=LiWei\tPri=14"
        );
        let day = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        let query = DeviceCommand::QueryAttendance {
            start: day.and_hms_opt(0, 0, 0).unwrap(),
            end: day.and_hms_opt(23, 59, 59).unwrap(),
            badge_numbers: vec![],
        };
        assert_eq!(
            render(&query),
            "DATA QUERY ATTLOG StartTime=2026-11-01 00:00:00\tEndTime=2026-11-01 23:59:59"
        );
        assert_eq!(render(&DeviceCommand::ClearData), "CLEAR DATA");
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
