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
use crate::protocol::status::Status;

pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// How often an unknown SN is recorded, at most.
const UNKNOWN_DEVICE_EVERY: chrono::Duration = chrono::Duration::hours(1);
/// A device's status is recorded when what it says of itself changes, and otherwise once
/// per this period while it talks to the gateway: its "last seen".
pub const STATUS_EVERY: chrono::Duration = chrono::Duration::minutes(5);
/// How long a looked-up binding is trusted before it is read again.
const BINDING_TTL: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

struct Inner {
    ledger: Ledger,
    clock: Clock,
    /// Each tenant's departments, people and rules, for checking phone punches; brought
    /// up to date from the ledger before every check.
    books: Mutex<HashMap<TenantId, Arc<tokio::sync::Mutex<TenantBook>>>>,
    bindings: Mutex<HashMap<DeviceSn, (tokio::time::Instant, Option<Binding>)>>,
    unknown_seen: Mutex<HashMap<DeviceSn, DateTime<Utc>>>,
    /// What each device last said of itself, and in which status period it was recorded.
    status: Mutex<HashMap<DeviceSn, (i64, Status)>>,
}

struct TenantBook {
    book: projections::book::Book,
    /// The stream sequence of the last event folded into `book`.
    last: u64,
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
                books: Mutex::default(),
                unknown_seen: Mutex::default(),
                status: Mutex::default(),
            }),
        }
    }

    pub fn router(self) -> Router {
        Router::new()
            .route("/iclock/cdata", get(handshake).post(upload))
            .route("/iclock/getrequest", get(get_request))
            .route("/iclock/devicecmd", axum::routing::post(device_cmd))
            .route("/iclock/ping", get(ping))
            .route("/mobile/punch", axum::routing::post(mobile_punch))
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

    /// Notes that a device spoke, with what it said of itself. Recorded as
    /// `DeviceStatusReported` when that changed or a new status period began; several
    /// gateways seeing the same device in one period record one event (derived id).
    async fn note_status(&self, tenant: &TenantId, sn: &DeviceSn, said: Status) {
        let now = self.now();
        let period = now.timestamp().div_euclid(STATUS_EVERY.num_seconds());
        let status = {
            let mut cache = self.inner.status.lock().expect("not poisoned");
            let (last_period, last) = cache
                .get(sn)
                .cloned()
                .unwrap_or((i64::MIN, Status::default()));
            let status = last.merged(&said);
            if last_period == period && status == last {
                return;
            }
            cache.insert(sn.clone(), (period, status.clone()));
            status
        };
        let id = EventId::derived(&[
            "device-status",
            sn.as_str(),
            &period.to_string(),
            &format!("{status:?}"),
        ]);
        let event = Envelope::new(
            tenant.clone(),
            Actor::Device { sn: sn.clone() },
            schemas::events::DeviceStatusReported {
                sn: sn.clone(),
                firmware: status.firmware,
                user_count: status.user_count,
                fingerprint_count: status.fingerprint_count,
                face_count: status.face_count,
                record_count: status.record_count,
                ip: status.ip,
                push_version: status.push_version,
            },
            now,
        )
        .with_id(id);
        if let Err(e) = self.inner.ledger.append(&event, Expected::Any).await {
            tracing::warn!(%sn, error = %e, "device status not recorded; trying again next time");
            self.inner.status.lock().expect("not poisoned").remove(sn);
        }
    }

    /// Runs `f` over the tenant's book after folding what the ledger added since the last
    /// call: a rule changed a moment ago applies to the next phone punch.
    async fn with_book<T>(
        &self,
        tenant: &TenantId,
        f: impl FnOnce(&projections::book::Book) -> T,
    ) -> Result<T, ledger::LedgerError> {
        use futures::StreamExt;
        use schemas::AggregateKind;
        let slot = self
            .inner
            .books
            .lock()
            .expect("not poisoned")
            .entry(tenant.clone())
            .or_insert_with(|| {
                Arc::new(tokio::sync::Mutex::new(TenantBook {
                    book: projections::book::Book::new(),
                    last: 0,
                }))
            })
            .clone();
        let mut slot = slot.lock().await;
        let p = self.inner.ledger.partitions();
        let from = ledger::ReadFrom {
            sequence: slot.last + 1,
            filters: [
                AggregateKind::Department,
                AggregateKind::Person,
                AggregateKind::Rule,
            ]
            .map(|kind| p.kind_filter(tenant, kind))
            .into(),
        };
        let mut events = self.inner.ledger.read(tenant, from).await?;
        while let Some(recorded) = events.next().await {
            let recorded = recorded?;
            slot.book.apply(recorded.sequence, &recorded.envelope);
            slot.last = recorded.sequence;
        }
        Ok(f(&slot.book))
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
            let said = Status {
                push_version: q.get("pushver").cloned(),
                ..Status::default()
            };
            gw.note_status(&binding.tenant, &binding.sn, said).await;
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
    gw.note_status(&binding.tenant, &binding.sn, Status::default())
        .await;
    let table = q.get("table").map(String::as_str).unwrap_or("");
    match table {
        "ATTLOG" => {}
        "OPERLOG" | "BIODATA" => return oper_upload(&gw, &binding, table, &body).await,
        _ => {
            // Photos (ATTPHOTO), error logs and the rest: acknowledged so the device
            // moves on, and logged; nothing of them is kept.
            let lines = crate::protocol::attlog::lines(&String::from_utf8_lossy(&body)).count();
            tracing::info!(sn = %binding.sn, table, lines, "table acknowledged and ignored");
            return text(format!("OK: {lines}\n"));
        }
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

/// An `OPERLOG` or `BIODATA` upload: users, biometrics and the operation log as events
/// (names decoded from GBK when the body is not UTF-8); `OK: n` once they are stored.
async fn oper_upload(gw: &Gateway, binding: &Binding, table: &str, body: &[u8]) -> Response {
    let now = gw.now();
    let body = crate::protocol::operlog::decode_body(body);
    let upload = crate::operlog_ingest::read_operlog(binding, &body);
    for (line, what) in &upload.ignored {
        tracing::debug!(sn = %binding.sn, table, what, line = %line.escape_debug(), "line acknowledged and ignored");
    }
    let events = crate::operlog_ingest::oper_events(binding, &upload, now);
    match gw.inner.ledger.append_many(&events).await {
        Ok(_) => {
            tracing::info!(sn = %binding.sn, table, recorded = events.len(), ignored = upload.ignored.len(), "device log stored");
            text(format!("OK: {}\n", upload.lines()))
        }
        Err(e) => {
            tracing::error!(sn = %binding.sn, table, error = %e, "device log not stored; the device will re-send");
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
    let said = q
        .get("INFO")
        .map(|info| Status::from_info_param(info))
        .unwrap_or_default();
    gw.note_status(&tenant, &sn, said).await;
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
    // An INFO reply's key=value lines follow its result line.
    match Status::from_info_reply(skipped.iter().map(String::as_str)) {
        Some(said) => gw.note_status(&tenant, &sn, said).await,
        None => {
            for line in &skipped {
                tracing::warn!(sn = %sn, line = %line.escape_debug(), "command result not understood");
            }
        }
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

/// `POST /mobile/punch`: a phone's punch as JSON; answered `201` with the recorded punch
/// and where it stands (in range, location exception, field work), or refused with a
/// reason: `400` a malformed request, `404` an unknown person, `422` the rule refuses.
async fn mobile_punch(State(gw): State<Gateway>, body: Bytes) -> Response {
    use crate::mobile::{self, Refusal};
    let refused = |status: StatusCode, reason: String| {
        json(
            status,
            &serde_json::json!({ "status": "refused", "reason": reason }),
        )
    };
    let req: mobile::MobilePunchRequest = match serde_json::from_slice(&body) {
        Ok(req) => req,
        Err(e) => {
            return refused(StatusCode::BAD_REQUEST, format!("not a mobile punch: {e}"));
        }
    };
    let tenant = match mobile::validate(&req) {
        Ok((tenant, _)) => tenant,
        Err(e) => return refused(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let now = gw.now();
    let decided = match gw
        .with_book(&tenant, |book| mobile::decide(book, &req, now))
        .await
    {
        Ok(decided) => decided,
        Err(e) => {
            tracing::error!(%tenant, error = %e, "cannot read the tenant's rules");
            return unavailable();
        }
    };
    let ledger = &gw.inner.ledger;
    match decided {
        Ok(accepted) => {
            let person = accepted
                .punch
                .person_id
                .clone()
                .expect("a phone punch names its person");
            let id = EventId::derived(&["mobile-punch", &accepted.punch.punch_id.to_string()]);
            let envelope = Envelope::new(
                tenant.clone(),
                Actor::Person { person_id: person },
                schemas::events::PunchRecorded {
                    punch: accepted.punch.clone(),
                },
                now,
            )
            .with_id(id);
            match ledger.append(&envelope, Expected::Any).await {
                Ok(appended) => {
                    let p = &accepted.punch;
                    tracing::info!(%tenant, person = %accepted.person, outcome = ?accepted.outcome, "mobile punch");
                    json(
                        StatusCode::CREATED,
                        &serde_json::json!({
                            "status": "recorded",
                            "punch_id": p.punch_id,
                            "person": accepted.person,
                            "instant": p.instant,
                            "local_time": p.local_time,
                            "zone": p.zone,
                            "rule_id": accepted.rule_id,
                            "rule_version": accepted.rule_version,
                            "outcome": accepted.outcome,
                            "duplicate": appended.duplicate,
                        }),
                    )
                }
                Err(e) => {
                    tracing::error!(%tenant, error = %e, "mobile punch not stored");
                    unavailable()
                }
            }
        }
        Err(Refusal::ByRule(event)) => {
            let reason = Refusal::ByRule(event.clone()).to_string();
            let id = EventId::derived(&[
                "mobile-refused",
                event.person_id.as_str(),
                &event.instant.to_rfc3339(),
            ]);
            let envelope = Envelope::new(
                tenant.clone(),
                Actor::Person {
                    person_id: event.person_id.clone(),
                },
                *event,
                now,
            )
            .with_id(id);
            // The refusal is the answer only once it is on record.
            if let Err(e) = ledger.append(&envelope, Expected::Any).await {
                tracing::error!(%tenant, error = %e, "refused mobile punch not recorded");
                return unavailable();
            }
            tracing::info!(%tenant, %reason, "mobile punch refused");
            refused(StatusCode::UNPROCESSABLE_ENTITY, reason)
        }
        Err(e @ Refusal::Invalid(_)) => refused(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e @ Refusal::NotPunching(projections::book::NotPunching::UnknownPerson(_))) => {
            refused(StatusCode::NOT_FOUND, e.to_string())
        }
        Err(e) => refused(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    }
}

fn json(status: StatusCode, body: &serde_json::Value) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        format!("{body}\n"),
    )
        .into_response()
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
