//! From an `ATTLOG` body (attendance firmware) or an `rtlog`/`transaction` body (access
//! firmware) to events: pure, with the clock passed in.
//!
//! One upload (one POST, up to 128 lines from real firmware) becomes one
//! `PunchesRecorded` event holding its punches, plus one `DeviceRecordRejected` per line
//! that cannot be a punch. Why one event per upload and not per punch: see
//! ARCHITECTURE.md, "Punches per message". A larger body is read in pieces of
//! [`LINES_PER_PIECE`] lines, each becoming its own events, so memory does not grow
//! with the body.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;
use schemas::events::{DeviceRecordRejected, Punch, PunchesRecorded, RejectionReason, VerifyMode};
use schemas::ids::{BadgeNumber, DeviceSn, EventId, TenantId, ZoneName};
use schemas::{Actor, Envelope};

use crate::protocol::{self, attlog, rtlog};

/// What the gateway knows of a bound device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub tenant: TenantId,
    pub sn: DeviceSn,
    pub zone: ZoneName,
    /// Records dated (locally) before this are rejected as clock resets.
    pub records_from: NaiveDate,
    /// The stream sequence of the SN's claim: which binding this is (a device bound
    /// again is a new binding, with cursors and registration of its own).
    pub claim_sequence: u64,
}

/// Punches per `PunchesRecorded` event: a real upload (at most 128 lines) is one event;
/// a body of a whole history is split so each message stays far below NATS's 1 MiB.
pub const MAX_PUNCHES_PER_EVENT: usize = 256;

/// Lines read into one piece of a large body (a few MB of memory at most); a real
/// upload of 128 lines is one piece.
pub const LINES_PER_PIECE: usize = 4096;

/// How far ahead of the server's clock a record may be before it is a clock error.
pub const FUTURE_TOLERANCE: Duration = Duration::days(1);

/// The outcome of one upload, before it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Upload {
    pub punches: Vec<Punch>,
    pub rejected: Vec<DeviceRecordRejected>,
    /// Lines understood and deliberately not stored (access events that are not
    /// punches), with why.
    pub ignored: Vec<(String, &'static str)>,
}

impl Upload {
    fn new() -> Self {
        Self {
            punches: Vec::new(),
            rejected: Vec::new(),
            ignored: Vec::new(),
        }
    }

    /// Lines stored, as a punch or as a rejection, or deliberately ignored: the `n` of
    /// `OK: n`.
    pub fn lines(&self) -> usize {
        self.punches.len() + self.rejected.len() + self.ignored.len()
    }

    fn reject(&mut self, binding: &Binding, line: &str, reason: RejectionReason, detail: String) {
        self.rejected.push(DeviceRecordRejected {
            sn: binding.sn.clone(),
            raw: protocol::kept_line(line),
            reason,
            detail: Some(detail),
        });
    }
}

/// Judges every line of an `ATTLOG` body.
pub fn read_attlog(binding: &Binding, body: &str, now: DateTime<Utc>) -> Upload {
    let tz = binding.zone.tz();
    let mut upload = Upload::new();
    for line in attlog::lines(body) {
        let punch = attlog::parse_line(line)
            .map_err(|r| (r.reason, r.detail))
            .and_then(|record| {
                let instant = accepted(binding, tz, record.local_time, now)?;
                Ok(Punch {
                    verify_mode: record.verify_code.map(VerifyMode::from_code),
                    punch_state: record.punch_state,
                    work_code: record.work_code.map(str::to_owned),
                    job_code: record.job_code.map(str::to_owned),
                    device_seq: record.device_seq,
                    raw_line: Some(line.to_owned()),
                    ..Punch::from_device(
                        binding.sn.clone(),
                        BadgeNumber::from(record.badge),
                        record.local_time,
                        binding.zone.clone(),
                        instant,
                    )
                })
            });
        match punch {
            Ok(punch) => upload.punches.push(punch),
            Err((reason, detail)) => upload.reject(binding, line, reason, detail),
        }
    }
    upload
}

/// Judges every line of an access device's `rtlog` or `transaction` body: a verified
/// person is a punch (identified like any device punch, by SN, badge number and local
/// time, so a record sent live and again in a backlog counts once); door, alarm and
/// denial events are ignored, with why.
pub fn read_access(binding: &Binding, body: &str, now: DateTime<Utc>) -> Upload {
    let tz = binding.zone.tz();
    let mut upload = Upload::new();
    for line in attlog::lines(body) {
        let record = rtlog::parse_line(line).map_err(|r| (r.reason, r.detail));
        let punch = match record {
            Ok(rtlog::AccessRecord::NotAPunch(why)) => {
                upload.ignored.push((protocol::kept_line(line), why));
                continue;
            }
            Ok(rtlog::AccessRecord::Punch(p)) => {
                accepted(binding, tz, p.local_time, now).map(|instant| Punch {
                    verify_mode: p.verify_code.map(access_verify_mode),
                    punch_state: p.in_out,
                    device_seq: p.index,
                    raw_line: Some(line.to_owned()),
                    ..Punch::from_device(
                        binding.sn.clone(),
                        BadgeNumber::from(p.pin),
                        p.local_time,
                        binding.zone.clone(),
                        instant,
                    )
                })
            }
            Err(e) => Err(e),
        };
        match punch {
            Ok(punch) => upload.punches.push(punch),
            Err((reason, detail)) => upload.reject(binding, line, reason, detail),
        }
    }
    upload
}

/// Access firmware's `verifytype` codes: 1 fingerprint, 3 password, 4 card, 15 face,
/// 25 palm (0 "any", 2 user id, combinations and the rest kept as their code).
fn access_verify_mode(code: u16) -> VerifyMode {
    match code {
        1 => VerifyMode::Fingerprint,
        3 => VerifyMode::Password,
        4 => VerifyMode::Card,
        15 => VerifyMode::Face,
        25 => VerifyMode::Palm,
        other => VerifyMode::Other(other),
    }
}

/// The instant of a record's local time, if the record can be a punch: not before the
/// binding's records start (a clock reset), not in a daylight-saving gap, not more
/// than a day ahead (a clock error).
fn accepted(
    binding: &Binding,
    tz: Tz,
    local: NaiveDateTime,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, (RejectionReason, String)> {
    if local.date() < binding.records_from {
        return Err((
            RejectionReason::BeforeBinding,
            format!(
                "dated {local} but the device's records start {} (clock reset?)",
                binding.records_from
            ),
        ));
    }
    let instant = instant_of(local, tz).ok_or_else(|| {
        (
            RejectionReason::NonexistentLocalTime,
            format!("{local} does not exist in {}", binding.zone),
        )
    })?;
    if instant > now + FUTURE_TOLERANCE {
        return Err((
            RejectionReason::InTheFuture,
            format!("dated {local}, more than a day after now (clock error?)"),
        ));
    }
    Ok(instant)
}

/// A local time in `tz`. In a daylight-saving fold (the hour that happens twice) the
/// earlier instant is taken: a device cannot say which, and the earlier one never
/// moves a punch past the end of a shift. In a gap (the hour that never happens) there
/// is none.
pub fn instant_of(local: NaiveDateTime, tz: Tz) -> Option<DateTime<Utc>> {
    local
        .and_local_timezone(tz)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// The events to append for an upload. Ids are derived from content, so the very same
/// POST sent again is dropped by JetStream's de-duplication; a re-send in other batch
/// sizes carries the same punch ids, which projections fold once.
pub fn upload_events(binding: &Binding, upload: &Upload, now: DateTime<Utc>) -> Vec<Envelope> {
    let actor = Actor::Device {
        sn: binding.sn.clone(),
    };
    events_of(binding, upload, "upload", actor, now)
}

/// What the ledger already holds of one device's records: the punch ids and the
/// rejected lines on its punch subject.
#[derive(Debug, Default)]
pub struct Held {
    pub punches: std::collections::HashSet<schemas::ids::PunchId>,
    pub rejected: std::collections::HashSet<String>,
}

impl Held {
    pub fn of(&mut self, event: &schemas::Event) {
        match event {
            schemas::Event::PunchesRecorded(e) => {
                self.punches.extend(e.punches.iter().map(|p| p.punch_id));
            }
            schemas::Event::PunchRecorded(e) => {
                self.punches.insert(e.punch.punch_id);
            }
            schemas::Event::DeviceRecordRejected(e) => {
                self.rejected.insert(e.raw.clone());
            }
            _ => {}
        }
    }
}

/// What an import found in a piece of a device's export.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Imported {
    /// Punches new to the ledger.
    pub punches: usize,
    /// Punches the ledger held already (uploaded, imported before, or twice in the file).
    pub held: usize,
    /// Lines rejected, by reason.
    pub rejected: std::collections::BTreeMap<String, usize>,
    /// Of those, lines the ledger held already (or met earlier in the file): not
    /// stored again.
    pub rejected_held: usize,
}

impl std::ops::AddAssign for Imported {
    fn add_assign(&mut self, other: Self) {
        self.punches += other.punches;
        self.held += other.held;
        for (reason, n) in other.rejected {
            *self.rejected.entry(reason).or_default() += n;
        }
        self.rejected_held += other.rejected_held;
    }
}

/// A device's own export (`<SN>_attlog.dat` from its USB stick: the ATTLOG lines it
/// keeps) as events: every line judged as an upload of it would be, with the same punch
/// identities (SN, badge number, local time), marked as imported and recorded by the
/// administrator who brought it, less what `held` already holds, which grows with
/// what is imported. So an export imported again, or one whose records the device
/// uploaded meanwhile, adds nothing.
pub fn import_events(
    binding: &Binding,
    body: &str,
    held: &mut Held,
    actor: Actor,
    now: DateTime<Utc>,
) -> (Vec<Envelope>, Imported) {
    let mut upload = read_attlog(binding, body, now);
    let mut found = Imported::default();
    upload.punches.retain(|p| {
        let new = held.punches.insert(p.punch_id);
        if new {
            found.punches += 1;
        } else {
            found.held += 1;
        }
        new
    });
    for p in &mut upload.punches {
        p.source = schemas::events::PunchSource::Import;
    }
    upload.rejected.retain(|r| {
        *found.rejected.entry(format!("{:?}", r.reason)).or_default() += 1;
        let new = held.rejected.insert(r.raw.clone());
        if !new {
            found.rejected_held += 1;
        }
        new
    });
    (events_of(binding, &upload, "import", actor, now), found)
}

fn events_of(
    binding: &Binding,
    upload: &Upload,
    how: &str,
    actor: Actor,
    now: DateTime<Utc>,
) -> Vec<Envelope> {
    let mut events = Vec::with_capacity(1 + upload.rejected.len());
    for punches in upload.punches.chunks(MAX_PUNCHES_PER_EVENT) {
        let ids: Vec<String> = punches.iter().map(|p| p.punch_id.to_string()).collect();
        let mut parts = vec![how, binding.tenant.as_str(), binding.sn.as_str()];
        parts.extend(ids.iter().map(String::as_str));
        let occurred = punches.iter().map(|p| p.instant).max().unwrap_or(now);
        events.push(
            Envelope::new(
                binding.tenant.clone(),
                actor.clone(),
                PunchesRecorded {
                    sn: binding.sn.clone(),
                    punches: punches.to_vec(),
                },
                now,
            )
            .occurred_at(occurred.min(now))
            .with_id(EventId::derived(&parts)),
        );
    }
    for rejected in &upload.rejected {
        events.push(
            Envelope::new(binding.tenant.clone(), actor.clone(), rejected.clone(), now).with_id(
                EventId::derived(&[
                    "rejected",
                    binding.tenant.as_str(),
                    binding.sn.as_str(),
                    &rejected.raw,
                ]),
            ),
        );
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding() -> Binding {
        Binding {
            tenant: TenantId::parse("acme").unwrap(),
            sn: DeviceSn::from("CQZ1"),
            zone: ZoneName::parse("Asia/Shanghai").unwrap(),
            records_from: NaiveDate::from_ymd_opt(2019, 1, 1).unwrap(),
            claim_sequence: 1,
        }
    }

    fn now() -> DateTime<Utc> {
        "2022-06-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_batch_keeps_its_good_lines_and_rejects_the_bad_alone() {
        let body = "   710011\t2020-09-30 10:10:37\t1\t0\t1\t0\n\
                    \x20  710011\t2000-01-01 00:00:12\t1\t0\t1\t0\n\
                    \x20  710011\t2047-03-07 10:10:37\t1\t0\t1\t0\n\
                    \x20  720204\t2020-09-30 15:08:33\t1\t0\t1\t0\n\
                    \x20  7202";
        let upload = read_attlog(&binding(), body, now());
        assert_eq!(upload.punches.len(), 2);
        let reasons: Vec<_> = upload.rejected.iter().map(|r| r.reason).collect();
        assert_eq!(
            reasons,
            [
                RejectionReason::BeforeBinding,
                RejectionReason::InTheFuture,
                RejectionReason::TooFewFields
            ]
        );
        assert_eq!(upload.lines(), 5);
        let first = &upload.punches[0];
        assert_eq!(first.badge_number.as_ref().unwrap().as_str(), "710011");
        assert_eq!(first.instant.to_rfc3339(), "2020-09-30T02:10:37+00:00");
        assert_eq!(
            first.raw_line.as_deref(),
            Some("   710011\t2020-09-30 10:10:37\t1\t0\t1\t0")
        );
    }

    #[test]
    fn a_resent_upload_is_the_same_events() {
        let body = "1\t2020-09-30 10:10:37\t1\t0\t1\t0\n2\t2020-09-30 10:11:00\t1\t0\t1\t0\n";
        let a = upload_events(&binding(), &read_attlog(&binding(), body, now()), now());
        let later = now() + Duration::hours(5);
        let b = upload_events(&binding(), &read_attlog(&binding(), body, later), later);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].event_id, b[0].event_id);
        // Another batching of the same records: another message, the same punch ids.
        let single = upload_events(
            &binding(),
            &read_attlog(&binding(), body.lines().next().unwrap(), now()),
            now(),
        );
        assert_ne!(single[0].event_id, a[0].event_id);
        let punch_ids = |e: &Envelope| match &e.event {
            schemas::Event::PunchesRecorded(p) => {
                p.punches.iter().map(|p| p.punch_id).collect::<Vec<_>>()
            }
            _ => vec![],
        };
        assert_eq!(punch_ids(&single[0])[0], punch_ids(&a[0])[0]);
    }

    #[test]
    fn daylight_saving_gaps_are_rejected_and_folds_take_the_earlier_instant() {
        let ny = Binding {
            zone: ZoneName::parse("America/New_York").unwrap(),
            ..binding()
        };
        let body = "1\t2021-03-14 02:30:00\t0\t1\t0\n1\t2021-11-07 01:30:00\t0\t1\t0\n";
        let upload = read_attlog(&ny, body, now());
        assert_eq!(
            upload.rejected[0].reason,
            RejectionReason::NonexistentLocalTime
        );
        assert_eq!(
            upload.punches[0].instant.to_rfc3339(),
            "2021-11-07T05:30:00+00:00"
        );
    }

    #[test]
    fn an_export_imports_what_the_ledger_lacks_with_the_upload_punch_ids() {
        let body = "1\t2020-09-30 10:10:37\t1\t0\t1\t0\n\
                    1\t2000-01-01 00:00:12\t1\t0\t1\t0\n\
                    2\t2020-09-30 10:11:00\t1\t0\t1\t0\n\
                    2\t2020-09-30 10:11:00\t1\t0\t1\t0\n";
        let admin = Actor::User {
            user_id: "hr".into(),
        };
        // The device uploaded its first record before it went offline.
        let mut held = Held::default();
        let uploaded = upload_events(
            &binding(),
            &read_attlog(&binding(), body.lines().next().unwrap(), now()),
            now(),
        );
        for e in &uploaded {
            held.of(&e.event);
        }
        let (events, found) = import_events(&binding(), body, &mut held, admin.clone(), now());
        assert_eq!(
            found,
            Imported {
                punches: 1,
                held: 2,
                rejected: [("BeforeBinding".to_owned(), 1)].into(),
                rejected_held: 0,
            }
        );
        let Some(schemas::Event::PunchesRecorded(p)) = events.first().map(|e| &e.event) else {
            panic!("a punch event first: {events:?}");
        };
        assert_eq!(p.punches.len(), 1);
        assert_eq!(p.punches[0].source, schemas::events::PunchSource::Import);
        let upload = read_attlog(&binding(), body, now());
        assert_eq!(p.punches[0].punch_id, upload.punches[1].punch_id);
        assert_eq!(events[0].actor, admin);
        assert_eq!(events.len(), 2, "one punch event, one rejected line");

        // Imported again: nothing.
        let (again, found) = import_events(&binding(), body, &mut held, admin, now());
        assert!(again.is_empty(), "{again:?}");
        assert_eq!((found.punches, found.held, found.rejected_held), (0, 3, 1));
        assert_eq!(found.rejected, [("BeforeBinding".to_owned(), 1)].into());
    }
}

#[cfg(test)]
mod access_tests {
    use super::*;

    #[test]
    fn verified_people_are_punches_the_rest_is_answered_for() {
        let binding = Binding {
            tenant: TenantId::parse("acme").unwrap(),
            sn: DeviceSn::from("ACC1"),
            zone: ZoneName::parse("Asia/Shanghai").unwrap(),
            records_from: NaiveDate::from_ymd_opt(2019, 1, 1).unwrap(),
            claim_sequence: 1,
        };
        let now: DateTime<Utc> = "2026-02-24T00:00:00Z".parse().unwrap();
        let body = "time=2026-02-23 14:13:48\tpin=2\tcardno=0\teventaddr=1\tevent=3\tinoutstatus=0\tverifytype=15\tindex=140\r\n\
                    time=2026-02-23 14:13:50\tpin=0\tcardno=0\teventaddr=1\tevent=206\tinoutstatus=2\tverifytype=200\tindex=141\r\n\
                    time=2026-02-23 14:13:52\tpin=9\tevent=27\tverifytype=15\tindex=142\r\n\
                    time=2026-02-23 14:1";
        let upload = read_access(&binding, body, now);
        assert_eq!(upload.lines(), 4, "every line answered for");
        assert_eq!(upload.punches.len(), 1);
        let punch = &upload.punches[0];
        assert_eq!(punch.badge_number.as_ref().unwrap().as_str(), "2");
        assert_eq!(punch.verify_mode, Some(VerifyMode::Face));
        assert_eq!(punch.device_seq, Some(140));
        assert_eq!(punch.instant.to_rfc3339(), "2026-02-23T06:13:48+00:00");
        // The same record from an attendance upload is the same punch.
        let attlog = read_attlog(&binding, "2\t2026-02-23 14:13:48\t0\t15\t0\t0\n", now);
        assert_eq!(attlog.punches[0].punch_id, punch.punch_id);
        assert_eq!(upload.ignored.len(), 2);
        assert_eq!(upload.rejected[0].reason, RejectionReason::TooFewFields);
    }
}
