use thiserror::Error;

/// Every way the ledger can fail, split by what the caller should do about it.
///
/// | variant | meaning | HTTP | NATS service | CLI exit |
/// | --- | --- | --- | --- | --- |
/// | `Rejected` | the input can never be stored as given | 400 | 400 | 65 |
/// | `Conflict` | someone appended to the aggregate first; re-read and decide again | 409 | 409 | 75 |
/// | `Unavailable` | NATS or JetStream did not store it in time; retry later | 503 | 503 | 69 |
/// | `Decode` | a stored message is not an event this build reads | 500 | 500 | 65 |
/// | `Setup` | streams or the server are not as configured | 500 | 500 | 78 |
#[derive(Debug, Error)]
pub enum LedgerError {
    #[error("rejected: {0}")]
    Rejected(String),
    #[error("conflict on {subject}: expected last sequence {expected}, the aggregate has moved on")]
    Conflict { subject: String, expected: u64 },
    #[error("ledger unavailable: {0}")]
    Unavailable(String),
    #[error("message {sequence} of {stream} does not decode: {source}")]
    Decode {
        stream: String,
        sequence: u64,
        #[source]
        source: schemas::SchemaError,
    },
    #[error("ledger setup: {0}")]
    Setup(String),
}

impl LedgerError {
    /// Exit code for command-line callers (sysexits.h).
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Rejected(_) | Self::Decode { .. } => 65,
            Self::Conflict { .. } => 75,
            Self::Unavailable(_) => 69,
            Self::Setup(_) => 78,
        }
    }

    pub(crate) fn unavailable(e: impl std::fmt::Display) -> Self {
        Self::Unavailable(e.to_string())
    }

    pub(crate) fn setup(e: impl std::fmt::Display) -> Self {
        Self::Setup(e.to_string())
    }
}
