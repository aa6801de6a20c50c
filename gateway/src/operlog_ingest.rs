//! From an `OPERLOG` or `BIODATA` body to events: pure, with the clock passed in.
//!
//! - `USER` → `DeviceUserReported` (what the device's own roster holds);
//! - `FP`, `FACE`, and `BIODATA` of fingerprints, faces and palms → `BiometricEnrolled`
//!   (that a template exists; the template itself is not kept);
//! - `OPLOG` → `DeviceOperationLogged`;
//! - photos, finger veins, invalid templates and unknown tags: acknowledged and counted
//!   as ignored;
//! - a line that cannot be read → `DeviceRecordRejected`, as for `ATTLOG`.
//!
//! Every line is answered for in `OK: n`; event ids derive from the line, so a re-sent
//! body is stored once within JetStream's duplicate window.

use chrono::{DateTime, Utc};
use schemas::events::{
    Biometric, BiometricEnrolled, DeviceOperationLogged, DevicePrivilege, DeviceRecordRejected,
    DeviceUserReported,
};
use schemas::ids::{BadgeNumber, EventId};
use schemas::{Actor, Envelope, Event};

use crate::ingest::Binding;
use crate::protocol::operlog::{self, BioKind, OperRecord, Untagged};

/// The outcome of one `OPERLOG`/`BIODATA` upload, before it is stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OperUpload {
    /// Each event with the line it came from.
    pub events: Vec<(String, Event)>,
    /// Lines understood and deliberately not recorded (photos, unknown tags, ...), with
    /// what they were.
    pub ignored: Vec<(String, &'static str)>,
}

impl OperUpload {
    /// The `n` of `OK: n`: every line, recorded or ignored.
    pub fn lines(&self) -> usize {
        self.events.len() + self.ignored.len()
    }
}

/// ZKTeco `Pri=`: 14 administrator, 2 registrar (enrols users), anything else a user.
fn privilege(code: u8) -> DevicePrivilege {
    match code {
        14 | 6 => DevicePrivilege::Admin,
        2 => DevicePrivilege::Registrar,
        _ => DevicePrivilege::User,
    }
}

fn enrolled(binding: &Binding, pin: &str, biometric: Biometric) -> Event {
    BiometricEnrolled {
        sn: binding.sn.clone(),
        person_id: None,
        badge_number: BadgeNumber::from(pin),
        biometric,
        template_ref: None,
    }
    .into()
}

/// Reads every line of a decoded `OPERLOG` or `BIODATA` body.
pub fn read_operlog(binding: &Binding, body: &str) -> OperUpload {
    read_records(binding, body, None)
}

/// Reads every line of a decoded body of user, biometric or operation records
/// (`OPERLOG`, `BIODATA`, `USERINFO`, `FINGERTMP`, Security PUSH's `user`/`biodata`
/// table data); lines without a tag are read as `untagged`.
pub fn read_records(binding: &Binding, body: &str, untagged: Option<Untagged>) -> OperUpload {
    let mut upload = OperUpload::default();
    for line in operlog::lines(body) {
        let mut ignore = |what| {
            upload
                .ignored
                .push((crate::protocol::kept_line(line), what))
        };
        let event: Event = match operlog::parse_line_as(line, untagged) {
            Err(rejected) => DeviceRecordRejected {
                sn: binding.sn.clone(),
                raw: crate::protocol::kept_line(line),
                reason: rejected.reason,
                detail: Some(rejected.detail),
            }
            .into(),
            Ok(OperRecord::User(u)) => DeviceUserReported {
                sn: binding.sn.clone(),
                badge_number: BadgeNumber::from(u.pin),
                name: u.name.to_owned(),
                privilege: privilege(u.privilege),
                card: u
                    .card_number()
                    .map(|n| n.to_string())
                    .or_else(|| u.card.map(str::to_owned)),
                has_password: u.has_password,
            }
            .into(),
            Ok(OperRecord::Fingerprint(t)) if t.valid => {
                enrolled(binding, t.pin, Biometric::Fingerprint { finger: t.index })
            }
            Ok(OperRecord::Face(t)) if t.valid => enrolled(binding, t.pin, Biometric::Face),
            Ok(OperRecord::Fingerprint(_) | OperRecord::Face(_)) => {
                ignore("an invalid template");
                continue;
            }
            Ok(OperRecord::BioData(b)) if b.valid => match b.kind {
                // `No` is the finger; `Index` which of its templates.
                BioKind::Fingerprint => {
                    enrolled(binding, b.pin, Biometric::Fingerprint { finger: b.no })
                }
                BioKind::Face | BioKind::VisibleLightFace => {
                    enrolled(binding, b.pin, Biometric::Face)
                }
                BioKind::Palm | BioKind::VisibleLightPalm => {
                    enrolled(binding, b.pin, Biometric::Palm)
                }
                BioKind::FingerVein | BioKind::Other(_) => {
                    ignore("a biometric kind the ledger does not track");
                    continue;
                }
            },
            Ok(OperRecord::BioData(_)) => {
                ignore("an invalid template");
                continue;
            }
            Ok(OperRecord::Photo(_)) => {
                ignore("a photo (not kept)");
                continue;
            }
            Ok(OperRecord::Operation(op)) => DeviceOperationLogged {
                sn: binding.sn.clone(),
                code: op.code,
                operator: op.admin.to_owned(),
                local_time: op.local_time,
                values: op
                    .values
                    .iter()
                    .map(|v| v.trim())
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned)
                    .collect(),
            }
            .into(),
            Ok(OperRecord::Other { .. }) => {
                ignore("an unknown tag");
                continue;
            }
        };
        upload
            .events
            .push((crate::protocol::kept_line(line), event));
    }
    upload
}

/// The envelopes to append, with ids derived from (tenant, SN, line).
pub fn oper_events(binding: &Binding, upload: &OperUpload, now: DateTime<Utc>) -> Vec<Envelope> {
    let actor = Actor::Device {
        sn: binding.sn.clone(),
    };
    upload
        .events
        .iter()
        .map(|(line, event)| {
            Envelope::new(binding.tenant.clone(), actor.clone(), event.clone(), now).with_id(
                EventId::derived(&[
                    "operlog",
                    binding.tenant.as_str(),
                    binding.sn.as_str(),
                    line,
                ]),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use schemas::ids::{DeviceSn, TenantId, ZoneName};

    fn binding() -> Binding {
        Binding {
            tenant: TenantId::parse("acme").unwrap(),
            sn: DeviceSn::from("CQZ1"),
            zone: ZoneName::parse("Asia/Shanghai").unwrap(),
            records_from: NaiveDate::from_ymd_opt(2019, 1, 1).unwrap(),
            claim_sequence: 1,
        }
    }

    #[test]
    fn every_line_is_recorded_ignored_or_rejected() {
        let (gbk, _, _) = encoding_rs::GBK
            .encode("USER PIN=1\tName=张三\tPri=14\tPasswd=123\tCard=[15CD5B07]\tGrp=1\n");
        let mut body = gbk.into_owned();
        body.extend_from_slice(
            b"FP PIN=1\tFID=6\tSize=8\tValid=1\tTMP=QUJDREVGR0g=\r\n\
              FP PIN=1\tFID=7\tSize=8\tValid=0\tTMP=QUJDREVGR0g=\n\
              BIODATA Pin=2\tNo=0\tIndex=0\tValid=1\tDuress=0\tType=9\tMajorVer=39\tMinorVer=3\tFormat=0\tTmp=QUJD\n\
              USERPIC PIN=1\tFileName=1.jpg\tSize=4\tContent=QUJD\n\
              OPLOG 4\t0\t2026-11-20 09:00:01\t0\t0\t0\t0\n\
              USER PIN=x1\tName=bad\n\
              WHAT is this",
        );
        let text = operlog::decode_body(&body);
        let upload = read_operlog(&binding(), &text);
        assert_eq!(upload.lines(), 8, "every line answered for");
        let kinds: Vec<_> = upload.events.iter().map(|(_, e)| e.kind()).collect();
        assert_eq!(
            kinds,
            [
                "DeviceUserReported",
                "BiometricEnrolled",
                "BiometricEnrolled",
                "DeviceOperationLogged",
                "DeviceRecordRejected"
            ]
        );
        let Event::DeviceUserReported(user) = &upload.events[0].1 else {
            unreachable!()
        };
        assert_eq!(user.name, "张三");
        assert_eq!(user.privilege, DevicePrivilege::Admin);
        assert_eq!(user.card.as_deref(), Some("123456789"));
        assert!(user.has_password);
        let Event::BiometricEnrolled(face) = &upload.events[2].1 else {
            unreachable!()
        };
        assert_eq!(face.biometric, Biometric::Face);
        let ignored: Vec<_> = upload.ignored.iter().map(|(_, why)| *why).collect();
        assert_eq!(
            ignored,
            [
                "an invalid template",
                "a photo (not kept)",
                "an unknown tag"
            ]
        );
        let events = oper_events(&binding(), &upload, "2026-11-20T01:00:00Z".parse().unwrap());
        assert_eq!(events.len(), 5);
        let again = oper_events(&binding(), &upload, "2026-11-20T02:00:00Z".parse().unwrap());
        assert_eq!(
            events[0].event_id, again[0].event_id,
            "a re-send is the same event"
        );
    }
}

#[cfg(test)]
mod finger_tests {
    use super::*;
    use chrono::NaiveDate;
    use schemas::ids::{DeviceSn, TenantId, ZoneName};

    #[test]
    fn biodata_finger_numbers_come_from_no_not_index() {
        // Regression: fingers 5 and 6 came out as 0 and 1 (their template index).
        let binding = Binding {
            tenant: TenantId::parse("acme").unwrap(),
            sn: DeviceSn::from("BIO1"),
            zone: ZoneName::parse("Asia/Shanghai").unwrap(),
            records_from: NaiveDate::from_ymd_opt(2019, 1, 1).unwrap(),
            claim_sequence: 1,
        };
        let body = "BIODATA Pin=3\tNo=5\tIndex=0\tValid=1\tDuress=0\tType=1\tMajorVer=12\tMinorVer=0\tFormat=0\tTmp=QUJD\n\
                    BIODATA Pin=3\tNo=6\tIndex=1\tValid=1\tDuress=0\tType=1\tMajorVer=12\tMinorVer=0\tFormat=0\tTmp=QUJD\n";
        let fingers: Vec<_> = read_operlog(&binding, body)
            .events
            .iter()
            .map(|(_, e)| match e {
                Event::BiometricEnrolled(b) => b.biometric.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            fingers,
            [
                Biometric::Fingerprint { finger: 5 },
                Biometric::Fingerprint { finger: 6 }
            ]
        );
    }
}
