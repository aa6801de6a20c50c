//! `arbitrary` generators for fields whose full range is not a valid attendance value:
//! instants between 1990 and 2100, finite coordinates. Used by property tests and fuzzing.

use arbitrary::{Result, Unstructured};
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};

const MIN: i64 = 631_152_000; // 1990-01-01
const MAX: i64 = 4_102_444_800; // 2100-01-01

pub fn instant(u: &mut Unstructured<'_>) -> Result<DateTime<Utc>> {
    let secs = u.int_in_range(MIN..=MAX)?;
    let nanos = u.int_in_range(0..=999_999)? * 1000;
    Ok(DateTime::from_timestamp(secs, nanos).unwrap_or_default())
}

pub fn opt_instant(u: &mut Unstructured<'_>) -> Result<Option<DateTime<Utc>>> {
    Ok(if u.arbitrary()? {
        Some(instant(u)?)
    } else {
        None
    })
}

pub fn local(u: &mut Unstructured<'_>) -> Result<NaiveDateTime> {
    let secs = u.int_in_range(MIN..=MAX)?;
    Ok(DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .naive_utc())
}

pub fn opt_local(u: &mut Unstructured<'_>) -> Result<Option<NaiveDateTime>> {
    Ok(if u.arbitrary()? {
        Some(local(u)?)
    } else {
        None
    })
}

pub fn date(u: &mut Unstructured<'_>) -> Result<NaiveDate> {
    Ok(local(u)?.date())
}

pub fn opt_date(u: &mut Unstructured<'_>) -> Result<Option<NaiveDate>> {
    Ok(if u.arbitrary()? { Some(date(u)?) } else { None })
}

pub fn time(u: &mut Unstructured<'_>) -> Result<NaiveTime> {
    let secs = u.int_in_range(0..=86_399)?;
    Ok(NaiveTime::from_num_seconds_from_midnight_opt(secs, 0).unwrap_or_default())
}

pub fn latitude(u: &mut Unstructured<'_>) -> Result<f64> {
    Ok(f64::from(u.int_in_range(-90_000_000..=90_000_000)?) / 1e6)
}

pub fn longitude(u: &mut Unstructured<'_>) -> Result<f64> {
    Ok(f64::from(u.int_in_range(-180_000_000..=180_000_000)?) / 1e6)
}

pub fn metres(u: &mut Unstructured<'_>) -> Result<f64> {
    Ok(f64::from(u.int_in_range(0..=100_000)?) / 10.0)
}

pub fn schema_version(u: &mut Unstructured<'_>) -> Result<u16> {
    u.int_in_range(1..=crate::SCHEMA_VERSION)
}
