//! The HTTP shell over the protocol: the connection layer ([`conn`]), routing, the
//! ledger, the clock.
//!
//! - [`conn`]: the device-tolerant HTTP/1.1 server (framing, limits, shedding).
//! - [`device`]: the `/iclock/` handlers, attendance and Security PUSH.
//! - [`body`]: a request body as pieces of lines, for bounded memory.
//! - [`mobile`]: `POST /mobile/punch`.
//! - [`health`]: `GET /health`, and what `/iclock/ping` answers.
//! - [`seen`]: what the gateway remembers of each device between requests (dialect,
//!   last status, stamps) and the capped log of what it ignored; bindings, command
//!   queues and phone rules are in [`crate::view`].

pub mod body;
pub mod conn;
pub mod device;
pub mod health;
pub mod mobile;
pub mod seen;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use ledger::Ledger;
use tokio::net::TcpListener;

pub use conn::Limits;

pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// How the gateway is run; the defaults are what `attendance up` and `attendance
/// gateway` use.
#[derive(Debug, Clone, Default)]
pub struct GatewayConfig {
    pub limits: Limits,
}

#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

struct Inner {
    ledger: Ledger,
    clock: Clock,
    config: GatewayConfig,
    /// Bindings, command queues and each tenant's book, folded from the stream as it
    /// grows: requests read these instead of the stream.
    view: crate::view::View,
    seen: seen::Seen,
    health: health::Health,
    conn: Arc<conn::ConnCounters>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").finish_non_exhaustive()
    }
}

impl Gateway {
    pub fn new(ledger: Ledger, clock: Clock) -> Self {
        Self::with_config(ledger, clock, GatewayConfig::default())
    }

    pub fn with_config(ledger: Ledger, clock: Clock, config: GatewayConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                view: crate::view::View::new(ledger.clone()),
                ledger,
                clock,
                config,
                seen: seen::Seen::default(),
                health: health::Health::default(),
                conn: Arc::default(),
            }),
        }
    }

    /// Routes by canonical path: the connection layer has already lowered the case and
    /// taken off `.aspx`, trailing slashes and any prefix before `/iclock/`.
    pub fn router(self) -> Router {
        Router::new()
            .route("/iclock/cdata", get(device::handshake).post(device::upload))
            .route("/iclock/querydata", post(device::upload))
            .route("/iclock/getrequest", get(device::get_request))
            .route("/iclock/devicecmd", post(device::device_cmd))
            .route(
                "/iclock/registry",
                post(device::registry).get(device::registry),
            )
            .route("/iclock/push", get(device::push).post(device::push))
            .route("/iclock/rtdata", get(device::rtdata))
            .route("/iclock/ping", get(device::ping).post(device::ping))
            .route("/mobile/punch", post(mobile::punch))
            .route("/health", get(health::answer))
            .fallback(not_found)
            .with_state(self)
    }

    fn now(&self) -> DateTime<Utc> {
        (self.inner.clock)()
    }

    fn ledger(&self) -> &Ledger {
        &self.inner.ledger
    }

    /// What this instance serves devices and phones from.
    pub fn view(&self) -> &crate::view::View {
        &self.inner.view
    }
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

pub(crate) fn text(body: String) -> Response {
    (
        StatusCode::OK,
        [(axum::http::header::CONTENT_TYPE, "text/plain")],
        body,
    )
        .into_response()
}

pub(crate) fn json(status: StatusCode, body: &serde_json::Value) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        format!("{body}\n"),
    )
        .into_response()
}

pub(crate) fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "ERROR: storage unavailable, send again\n",
    )
        .into_response()
}

/// Serves devices and phones on `listener` until `shutdown` resolves; then stops
/// accepting and finishes the requests in flight (their uploads are acknowledged or
/// refused).
pub async fn run(
    gateway: Gateway,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = gateway.inner.config.limits.clone();
    let clock = gateway.inner.clock.clone();
    let counters = gateway.inner.conn.clone();
    conn::serve(
        listener,
        gateway.router(),
        limits,
        clock,
        crate::protocol::params::device_target,
        counters,
        shutdown,
    )
    .await
}
