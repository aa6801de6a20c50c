//! Raw records (原始记录): every punch once, however many times it was received, and
//! every device record that could not be a punch. A pure fold.

use std::collections::BTreeMap;

use schemas::events::{DeviceRecordRejected, Punch};
use schemas::ids::PunchId;
use schemas::{Envelope, Event};

/// One punch as the raw-records view shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RawPunch {
    pub punch: Punch,
    /// How many stored events carry the punch: each re-send in a new batching counts;
    /// a byte-identical upload within JetStream's duplicate window was never stored twice.
    pub received: u32,
    /// Stream sequence of the first arrival.
    pub first_sequence: u64,
}

/// A device line that could not be a punch, once per (device, raw text).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RawRejection {
    pub record: DeviceRecordRejected,
    /// How many stored rejection events carry the line (ids derive from the line, so
    /// repeats within the duplicate window are one).
    pub received: u32,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RawRecords {
    pub punches: BTreeMap<PunchId, RawPunch>,
    /// Keyed by (device SN, raw line): the same bad line re-sent is one record.
    pub rejected: BTreeMap<(String, String), RawRejection>,
    /// The last stream sequence folded: the checkpoint.
    pub checkpoint: u64,
}

impl RawRecords {
    /// Folds one event. Idempotent for punches: a punch id seen before only counts
    /// another receipt.
    pub fn apply(&mut self, sequence: u64, envelope: &Envelope) {
        self.checkpoint = self.checkpoint.max(sequence);
        match &envelope.event {
            Event::PunchRecorded(e) => self.punch(sequence, &e.punch),
            Event::PunchesRecorded(e) => {
                for punch in &e.punches {
                    self.punch(sequence, punch);
                }
            }
            Event::MakeUpPunchApproved(e) => {
                // The approval names the person even if its punch does not.
                if e.punch.person_id.is_none() {
                    let mut punch = e.punch.clone();
                    punch.person_id = Some(e.person_id.clone());
                    self.punch(sequence, &punch);
                } else {
                    self.punch(sequence, &e.punch);
                }
            }
            Event::DeviceRecordRejected(e) => {
                self.rejected
                    .entry((e.sn.to_string(), e.raw.clone()))
                    .and_modify(|r| r.received += 1)
                    .or_insert_with(|| RawRejection {
                        record: e.clone(),
                        received: 1,
                    });
            }
            // Listed, not wildcarded: a new event kind must be considered here.
            Event::DepartmentDefined(_)
            | Event::DepartmentRenamed(_)
            | Event::DepartmentMoved(_)
            | Event::PersonHired(_)
            | Event::PersonUpdated(_)
            | Event::PersonLeft(_)
            | Event::PersonRejoined(_)
            | Event::BadgeNumberAssigned(_)
            | Event::DeviceBound(_)
            | Event::DeviceUnbound(_)
            | Event::DeviceRenamed(_)
            | Event::DeviceScopeSet(_)
            | Event::RosterMemberPushed(_)
            | Event::RosterMemberRemoved(_)
            | Event::RosterMemberDisabled(_)
            | Event::DevicePrivilegeSet(_)
            | Event::BiometricEnrolled(_)
            | Event::BiometricRemoved(_)
            | Event::DeviceCommandQueued(_)
            | Event::DeviceCommandDelivered(_)
            | Event::DeviceCommandAcknowledged(_)
            | Event::DeviceCommandFailed(_)
            | Event::DeviceCommandExpired(_)
            | Event::UnknownDeviceSeen(_)
            | Event::DeviceStatusReported(_)
            | Event::DeviceClaimed(_)
            | Event::DeviceReleased(_)
            | Event::DeviceUserReported(_)
            | Event::DeviceOperationLogged(_)
            | Event::DeviceCommandSuperseded(_)
            | Event::DeviceRegistered(_)
            | Event::DeviceStampRecorded(_)
            | Event::DeviceUploadUnrecognised(_)
            // A refused phone punch is not a punch; it stays in the ledger for audit.
            | Event::MobilePunchRefused(_)
            | Event::RuleVersionDefined(_)
            | Event::RuleMembershipSet(_)
            | Event::ShiftDefined(_)
            | Event::ScheduleAssigned(_)
            | Event::ScheduleCycleDefined(_)
            | Event::ScheduleCycleAssigned(_)
            | Event::ShiftSwapApproved(_)
            | Event::HolidayCalendarPublished(_)
            | Event::SpecialDatesSet(_)
            | Event::MakeUpPunchRequested(_)
            | Event::MakeUpPunchRejected(_)
            | Event::CalibrationApplied(_)
            | Event::LeaveApproved(_)
            | Event::BusinessTripApproved(_)
            | Event::OutingApproved(_)
            | Event::PeriodClosed(_)
            | Event::OvertimeApproved(_)
            | Event::ReuploadRequested(_) => {}
        }
    }

    fn punch(&mut self, sequence: u64, punch: &Punch) {
        self.punches
            .entry(punch.punch_id)
            .and_modify(|p| p.received += 1)
            .or_insert_with(|| RawPunch {
                punch: punch.clone(),
                received: 1,
                first_sequence: sequence,
            });
    }
}
