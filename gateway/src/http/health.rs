//! Whether the gateway can store what devices send: its NATS connection is up and
//! JetStream answers. `GET /health` says so (200, or 503 with the reason, and what the
//! connection layer and the ignored-data log have counted); `/iclock/ping` answers a
//! device `OK` only when it is so, and uploads are refused at once (503, send again)
//! while the connection is down instead of waiting out the append retries.

use std::sync::Mutex;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use tokio::time::Instant;

use super::{Gateway, json};

/// How long a JetStream check is trusted.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// How long a check may take before the answer is "unhealthy".
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Default)]
pub struct Health {
    last: Mutex<Option<(Instant, Result<(), String>)>>,
}

impl Gateway {
    /// Whether the NATS connection is up now (no round trip).
    pub(crate) fn connected(&self) -> bool {
        self.ledger().connected().is_ok()
    }

    /// Whether the ledger can store: connected, and JetStream answered within the last
    /// second (checked again if not).
    pub async fn healthy(&self) -> Result<(), String> {
        self.ledger().connected()?;
        if let Some((at, result)) = self.inner.health.last.lock().expect("not poisoned").clone()
            && at.elapsed() < CHECK_EVERY
        {
            return result;
        }
        let result = self.ledger().check(CHECK_TIMEOUT).await;
        *self.inner.health.last.lock().expect("not poisoned") =
            Some((Instant::now(), result.clone()));
        result
    }
}

/// `GET /health`.
pub async fn answer(State(gw): State<Gateway>) -> Response {
    let health = gw.healthy().await;
    let body = serde_json::json!({
        "status": if health.is_ok() { "ok" } else { "unhealthy" },
        "reason": health.as_ref().err(),
        "connections": gw.inner.conn.snapshot(),
        "device_lines": gw.inner.seen.ignored_counts(),
    });
    let status = if health.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json(status, &body)
}
