//! Payroll periods (月结): an administrator closes a month once its days are over. The
//! projections then keep every day of it as it was closed; whatever is recorded later
//! that changes one shows beside it as a pending adjustment and is carried into the next
//! month to close. Months close in order and are not reopened: a correction to a
//! closed month is an adjustment, never a rewrite.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, NaiveTime, Utc};
use schemas::events::PeriodClosed;
use schemas::ids::Month;
use schemas::{AggregateKind, Envelope, Event};
use serde::{Deserialize, Serialize};

use crate::{Command, Decided, Rejection, State};

/// The months closed so far.
#[derive(Debug, Clone, Default)]
pub struct Periods {
    pub closed: BTreeSet<Month>,
}

impl State for Periods {
    fn apply(&mut self, _sequence: u64, envelope: &Envelope) {
        if let Event::PeriodClosed(e) = &envelope.event {
            self.closed.insert(e.month);
        }
    }
}

/// When a month may close: 12:00 UTC on the second day of the next, when its last day
/// has ended in every zone and a night shift that began on it has ended too.
pub fn closable_from(month: Month) -> DateTime<Utc> {
    let second = month.next().first_day() + Duration::days(1);
    second
        .and_time(NaiveTime::from_hms_opt(12, 0, 0).expect("noon"))
        .and_utc()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PeriodCommand {
    /// Closes `month` (`YYYY-MM`) for payroll. Months close in order, each once, after
    /// they have ended.
    Close {
        month: Month,
        #[serde(default)]
        note: Option<String>,
    },
}

impl Command for PeriodCommand {
    type State = Periods;

    fn reads(&self) -> &'static [AggregateKind] {
        &[AggregateKind::Period]
    }

    fn guards(&self) -> Option<AggregateKind> {
        Some(AggregateKind::Period)
    }

    fn decide(&self, s: &Periods, now: DateTime<Utc>) -> Result<Vec<Decided>, Rejection> {
        match self {
            Self::Close { month, note } => {
                if s.closed.contains(month) {
                    return Err(Rejection::Conflict(format!(
                        "{month} is closed already; a closed month is not reopened: what \
                         changed since shows as adjustments in the next month to close"
                    )));
                }
                if let Some(later) = s.closed.range(month.next()..).next() {
                    return Err(Rejection::Conflict(format!(
                        "{later} is closed: months close in order, and {month} is before it"
                    )));
                }
                if let Some(last) = s.closed.iter().next_back()
                    && last.next() != *month
                {
                    return Err(Rejection::Invalid(format!(
                        "the next month to close is {}: months close in order, and {last} \
                         was the last closed",
                        last.next()
                    )));
                }
                let from = closable_from(*month);
                if now < from {
                    return Err(Rejection::Invalid(format!(
                        "{month} has not ended everywhere yet: it can be closed from {} UTC",
                        from.format("%Y-%m-%d %H:%M")
                    )));
                }
                let note = match note.as_deref().map(str::trim) {
                    Some("") | None => None,
                    Some(n) if n.chars().count() > 500 => {
                        return Err(Rejection::Invalid(
                            "a close's note is at most 500 characters".into(),
                        ));
                    }
                    Some(n) => Some(n.to_owned()),
                };
                Ok(vec![
                    PeriodClosed {
                        month: *month,
                        note,
                    }
                    .into(),
                ])
            }
        }
    }
}
