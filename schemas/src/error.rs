use thiserror::Error;

/// Everything that can go wrong turning values into wire bytes and back.
///
/// All variants are rejected input: the bytes or text given cannot be an event of this
/// catalogue. Callers map them to HTTP 400, a NATS service error 400, or CLI exit code 65.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SchemaError {
    #[error("invalid tenant id {0:?}: use lowercase letters, digits and '-', at most 63")]
    InvalidTenant(String),
    #[error("unknown time zone {0:?}: use an IANA name such as Asia/Shanghai")]
    InvalidZone(String),
    #[error("invalid month {0:?}: use YYYY-MM, e.g. 2026-11")]
    InvalidMonth(String),
    #[error("cannot decode event: {0}")]
    Decode(String),
    #[error("cannot encode event: {0}")]
    Encode(String),
    #[error("event schema version {0} is not one this build reads (it reads 1..={max})", max = crate::SCHEMA_VERSION)]
    UnsupportedVersion(u16),
}
