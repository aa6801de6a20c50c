//! The HTTP shell over the protocol: routing, the ledger, the clock. Devices speak
//! HTTP/1.1 with no Content-Type and sometimes an unreliable Content-Length; the body is
//! read as bytes whatever the headers say.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use ledger::{Expected, Ledger};
use schemas::events::UnknownDeviceSeen;
use schemas::ids::{DeviceSn, EventId, TenantId};
use schemas::{Actor, Envelope};
use tokio::net::TcpListener;

use crate::ingest::{self, Binding};
use crate::protocol::options;

pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// How often an unknown SN is recorded, at most.
const UNKNOWN_DEVICE_EVERY: chrono::Duration = chrono::Duration::hours(1);
/// How long a looked-up binding is trusted before it is read again.
const BINDING_TTL: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

struct Inner {
    ledger: Ledger,
    clock: Clock,
    bindings: Mutex<HashMap<DeviceSn, (tokio::time::Instant, Option<Binding>)>>,
    unknown_seen: Mutex<HashMap<DeviceSn, DateTime<Utc>>>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").finish_non_exhaustive()
    }
}

impl Gateway {
    pub fn new(ledger: Ledger, clock: Clock) -> Self {
        Self {
            inner: Arc::new(Inner {
                ledger,
                clock,
                bindings: Mutex::default(),
                unknown_seen: Mutex::default(),
            }),
        }
    }

    pub fn router(self) -> Router {
        Router::new()
            .route("/iclock/cdata", get(handshake).post(upload))
            .route("/iclock/getrequest", get(get_request))
            .route("/iclock/devicecmd", axum::routing::post(device_cmd))
            .route("/iclock/ping", get(ping))
            // A device re-sending its whole history may send tens of thousands of lines
            // in one body.
            .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024))
            .with_state(self)
    }

    fn now(&self) -> DateTime<Utc> {
        (self.inner.clock)()
    }

    async fn binding(&self, sn: &DeviceSn) -> Result<Option<Binding>, ledger::LedgerError> {
        if let Some((at, binding)) = self.inner.bindings.lock().expect("not poisoned").get(sn)
            && at.elapsed() < BINDING_TTL
        {
            return Ok(binding.clone());
        }
        let binding = crate::admin::lookup(&self.inner.ledger, sn).await?;
        self.inner
            .bindings
            .lock()
            .expect("not poisoned")
            .insert(sn.clone(), (tokio::time::Instant::now(), binding.clone()));
        Ok(binding)
    }

    /// Resolves the device of a request, or answers for it: unknown devices are refused
    /// and recorded (at most once an hour per SN); nothing else is written for them.
    async fn device(
        &self,
        query: &HashMap<String, String>,
        uri: &Uri,
        peer: SocketAddr,
    ) -> Result<Binding, Response> {
        let sn = request_sn(query).map_err(|why| (StatusCode::BAD_REQUEST, why).into_response())?;
        let found = self.binding(&sn).await;
        self.known(&sn, found, uri, peer).await
    }

    /// Resolves whose command queue a polling device reads: a bound device's tenant, or
    /// the tenant that unbound it (it still gets its `CLEAR DATA`). Unknown: refused.
    async fn command_target(
        &self,
        query: &HashMap<String, String>,
        uri: &Uri,
        peer: SocketAddr,
    ) -> Result<(TenantId, DeviceSn), Response> {
        let sn = request_sn(query).map_err(|why| (StatusCode::BAD_REQUEST, why).into_response())?;
        let found = crate::admin::lookup_command_tenant(&self.inner.ledger, &sn).await;
        let tenant = self.known(&sn, found, uri, peer).await?;
        Ok((tenant, sn))
    }

    /// One policy for every lookup of a device: found goes on; not found is refused and
    /// recorded as an unknown device; a ledger that cannot answer makes the device retry.
    async fn known<T>(
        &self,
        sn: &DeviceSn,
        found: Result<Option<T>, ledger::LedgerError>,
        uri: &Uri,
        peer: SocketAddr,
    ) -> Result<T, Response> {
        match found {
            Ok(Some(found)) => Ok(found),
            Ok(None) => {
                self.record_unknown(sn, uri, peer).await;
                Err((StatusCode::FORBIDDEN, "device not bound\n").into_response())
            }
            Err(e) => {
                tracing::error!(%sn, error = %e, "cannot read the device binding");
                Err(unavailable())
            }
        }
    }

    async fn record_unknown(&self, sn: &DeviceSn, uri: &Uri, peer: SocketAddr) {
        let now = self.now();
        {
            let mut seen = self.inner.unknown_seen.lock().expect("not poisoned");
            if seen
                .get(sn)
                .is_some_and(|at| now - *at < UNKNOWN_DEVICE_EVERY)
            {
                return;
            }
            seen.insert(sn.clone(), now);
        }
        tracing::warn!(%sn, %peer, "unknown device");
        let hour = now.timestamp() / UNKNOWN_DEVICE_EVERY.num_seconds();
        let event = Envelope::new(
            TenantId::system(),
            Actor::Device { sn: sn.clone() },
            UnknownDeviceSeen {
                sn: sn.clone(),
                remote_addr: Some(peer.ip().to_string()),
                request: uri.to_string(),
            },
            now,
        )
        // Several gateways seeing the same SN in the same hour record it once.
        .with_id(EventId::derived(&[
            "unknown-device",
            sn.as_str(),
            &hour.to_string(),
        ]));
        if let Err(e) = self.inner.ledger.append(&event, Expected::Any).await {
            tracing::error!(%sn, error = %e, "cannot record an unknown device");
        }
    }
}

/// The `SN=` of a request, checked; else why not.
fn request_sn(query: &HashMap<String, String>) -> Result<DeviceSn, &'static str> {
    let sn = query
        .get("SN")
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .ok_or("SN is required\n")?;
    crate::admin::valid_sn(sn).map_err(|_| "invalid SN\n")
}

type Params = Query<HashMap<String, String>>;
type Peer = ConnectInfo<SocketAddr>;

async fn handshake(
    State(gw): State<Gateway>,
    Query(q): Params,
    ConnectInfo(peer): Peer,
    uri: Uri,
) -> Response {
    match gw.device(&q, &uri, peer).await {
        Ok(binding) => {
            tracing::info!(sn = %binding.sn, tenant = %binding.tenant, "handshake");
            text(options::render(
                binding.sn.as_str(),
                binding.zone.tz(),
                gw.now(),
            ))
        }
        Err(response) => response,
    }
}

async fn upload(
    State(gw): State<Gateway>,
    Query(q): Params,
    ConnectInfo(peer): Peer,
    uri: Uri,
    body: Bytes,
) -> Response {
    let binding = match gw.device(&q, &uri, peer).await {
        Ok(binding) => binding,
        Err(response) => return response,
    };
    let table = q.get("table").map(String::as_str).unwrap_or("");
    if table != "ATTLOG" {
        // OPERLOG (users, fingerprints, operation log), BIODATA and the rest are not
        // events yet: acknowledged so the device moves on, and logged.
        let lines = crate::protocol::attlog::lines(&String::from_utf8_lossy(&body)).count();
        tracing::info!(sn = %binding.sn, table, lines, "table acknowledged and ignored");
        return text(format!("OK: {lines}\n"));
    }
    let now = gw.now();
    let body = String::from_utf8_lossy(&body);
    let upload = ingest::read_attlog(&binding, &body, now);
    for rejected in &upload.rejected {
        tracing::warn!(sn = %binding.sn, reason = ?rejected.reason, raw = %rejected.raw.escape_debug(), "device record rejected");
    }
    let events = ingest::upload_events(&binding, &upload, now);
    // The device hears OK only once JetStream has acknowledged every event of the batch.
    match gw.inner.ledger.append_many(&events).await {
        Ok(_) => {
            tracing::debug!(sn = %binding.sn, punches = upload.punches.len(), rejected = upload.rejected.len(), "upload stored");
            text(format!("OK: {}\n", upload.lines()))
        }
        Err(e) => {
            tracing::error!(sn = %binding.sn, error = %e, "upload not stored; the device will re-send");
            unavailable()
        }
    }
}

async fn get_request(
    State(gw): State<Gateway>,
    Query(q): Params,
    ConnectInfo(peer): Peer,
    uri: Uri,
) -> Response {
    let (tenant, sn) = match gw.command_target(&q, &uri, peer).await {
        Ok(target) => target,
        Err(response) => return response,
    };
    let now = gw.now();
    let ledger = &gw.inner.ledger;
    let result = async {
        let (queue, _) = crate::commands::load(ledger, &tenant, &sn).await?;
        let (deliver, events) = crate::commands::poll(&queue, &sn, now);
        // Recorded as delivered before the device hears of them: a lost reply is
        // redelivered later, a lost record would never be.
        let envelopes: Vec<Envelope> = events
            .into_iter()
            .map(|e| Envelope::new(tenant.clone(), Actor::Device { sn: sn.clone() }, e, now))
            .collect();
        ledger.append_many(&envelopes).await?;
        Ok::<_, ledger::LedgerError>(deliver)
    }
    .await;
    match result {
        Ok(deliver) if deliver.is_empty() => text("OK\n".into()),
        Ok(deliver) => {
            tracing::info!(sn = %sn, commands = deliver.len(), "commands delivered");
            let lines: String = deliver
                .iter()
                .map(|(id, command)| {
                    format!("C:{id}:{}\n", crate::protocol::commands::render(command))
                })
                .collect();
            text(lines)
        }
        Err(e) => {
            tracing::error!(sn = %sn, error = %e, "cannot serve commands");
            unavailable()
        }
    }
}

async fn device_cmd(
    State(gw): State<Gateway>,
    Query(q): Params,
    ConnectInfo(peer): Peer,
    uri: Uri,
    body: Bytes,
) -> Response {
    let (tenant, sn) = match gw.command_target(&q, &uri, peer).await {
        Ok(target) => target,
        Err(response) => return response,
    };
    let now = gw.now();
    let (posted, skipped) =
        crate::protocol::commands::parse_results(&String::from_utf8_lossy(&body));
    for line in &skipped {
        tracing::warn!(sn = %sn, line = %line.escape_debug(), "command result not understood");
    }
    let ledger = &gw.inner.ledger;
    let result = async {
        let (queue, _) = crate::commands::load(ledger, &tenant, &sn).await?;
        let envelopes: Vec<Envelope> = crate::commands::results(&queue, &sn, &posted)
            .into_iter()
            .map(|e| Envelope::new(tenant.clone(), Actor::Device { sn: sn.clone() }, e, now))
            .collect();
        ledger.append_many(&envelopes).await
    }
    .await;
    match result {
        Ok(stored) => {
            tracing::info!(sn = %sn, results = posted.len(), recorded = stored.len(), "command results");
            text("OK\n".into())
        }
        Err(e) => {
            tracing::error!(sn = %sn, error = %e, "cannot record command results; the device will send them again");
            unavailable()
        }
    }
}

async fn ping() -> Response {
    text("OK\n".into())
}

fn text(body: String) -> Response {
    (
        StatusCode::OK,
        [(axum::http::header::CONTENT_TYPE, "text/plain")],
        body,
    )
        .into_response()
}

fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "ERROR: storage unavailable, send again\n",
    )
        .into_response()
}

/// Serves devices on `listener` until `shutdown` resolves; then stops accepting and
/// finishes the requests in flight (their uploads are acknowledged or refused).
pub async fn run(
    gateway: Gateway,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = gateway
        .router()
        .into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
