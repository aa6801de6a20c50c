//! The `/iclock/` handlers: what each device request does, in both dialects.
//!
//! | request | attendance PUSH | Security PUSH (access) |
//! | --- | --- | --- |
//! | `GET cdata?options=all` | options block with cursors, `TimeZone` | `registry=ok` block |
//! | `GET cdata?type=time`, `rtdata?type=time\|rttime` | the time | the time |
//! | `POST registry`, `GET\|POST push` | - | `RegistryCode`, configuration |
//! | `POST cdata?table=..` | ATTLOG, OPERLOG, BIODATA, USERINFO, FINGERTMP, options, ATTPHOTO, ... | rtlog, tabledata, ... |
//! | `POST querydata` | - | replies to `DATA QUERY` |
//! | `GET getrequest` | commands (limited per reply) | the same, in access syntax |
//! | `POST devicecmd` | command results | the same |
//! | `GET\|POST ping` | `OK` while storage works | the same |
//!
//! Every upload is stored in JetStream (or deliberately ignored, with why) before the
//! device hears its answer; a device that is not bound is refused (403, 406 for
//! registration) before its body is read, and writes nothing but an hourly sighting.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Offset, Utc};
use ledger::Expected;
use schemas::events::{
    DeviceRecordRejected, DeviceUploadUnrecognised, RejectionReason, UnknownDeviceSeen,
};
use schemas::ids::{DeviceSn, EventId, TenantId};
use schemas::{Actor, Aggregate, AggregateKind, Envelope, Event};

use super::body::Pieces;
use super::seen::STATUS_EVERY;
use super::{Gateway, text, unavailable};
use crate::commands::{self, DeliveryLimits};
use crate::ingest::{self, Binding, LINES_PER_PIECE};
use crate::protocol::options::{self, parse_device_options};
use crate::protocol::params::Params;
use crate::protocol::status::Status;
use crate::protocol::tables::{Handling, Table};
use crate::protocol::{Dialect, time};
use crate::view::{NotCurrent, View};
use crate::{cursors, operlog_ingest, registration};

type Peer = ConnectInfo<SocketAddr>;

/// Bytes of a body read whole (options lists, registration): far above what devices send.
const MAX_SMALL_BODY: usize = 64 * 1024;
/// The longest line held whole: photos and templates in OPERLOG lines run to a few
/// hundred KB; longer lines are cut and rejected alone.
const MAX_RECORD_LINE: usize = 4 * 1024 * 1024;
/// The same for ATTLOG and access records, which are under 200 bytes.
const MAX_PUNCH_LINE: usize = 64 * 1024;
/// Bytes of lines read into one piece of a body.
const PIECE_BYTES: usize = 8 * 1024 * 1024;
/// Lines of an unrecognised table kept per event, and their bytes.
const KEPT_LINES_PER_EVENT: usize = 256;
const KEPT_BYTES_PER_EVENT: usize = 256 * 1024;

fn params(uri: &Uri) -> Params {
    Params::parse(uri.query().unwrap_or(""))
}

/// The `SN=` of a request, checked; else why not.
fn request_sn(params: &Params) -> Result<DeviceSn, &'static str> {
    let sn = params.get("SN").ok_or("SN is required\n")?;
    ::commands::devices::valid_sn(sn).map_err(|_| "invalid SN\n")
}

/// The zone's UTC offset now, in seconds.
fn offset_seconds(binding: &Binding, now: DateTime<Utc>) -> i32 {
    now.with_timezone(&binding.zone.tz())
        .offset()
        .fix()
        .local_minus_utc()
}

/// What any request says of the device: its clock (`DeviceTime=`), its protocol.
fn said_in(params: &Params) -> Status {
    Status {
        push_version: params.get("pushver").map(str::to_owned),
        device_type: params
            .get("DeviceType")
            .and_then(Dialect::from_device_type)
            .map(|d| d.device_type().to_owned()),
        device_time: params.get("DeviceTime").and_then(time::parse_local),
        ..Status::default()
    }
}

/// The status period `at` falls in for `sn`. Each SN's periods start at an offset of
/// their own (a hash of the SN), so that thousands of devices do not all record their
/// "last seen" in the same few seconds after a period turns; the offset is the same in
/// every gateway, so the derived event id still makes one record per period.
fn status_period(sn: &DeviceSn, at: DateTime<Utc>) -> i64 {
    let period = STATUS_EVERY.num_seconds();
    let mut hash: u32 = 0x811c_9dc5;
    for byte in sn.as_str().bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    (at.timestamp() + i64::from(hash) % period).div_euclid(period)
}

impl Gateway {
    async fn binding(&self, sn: &DeviceSn) -> Result<Option<Binding>, NotCurrent> {
        self.inner.view.binding(sn).await
    }

    /// Resolves the device of a request, or answers for it: unknown devices are refused
    /// and recorded (at most once an hour per SN); nothing else is written for them.
    async fn device(
        &self,
        params: &Params,
        uri: &Uri,
        peer: SocketAddr,
    ) -> Result<Binding, Response> {
        self.device_or(params, uri, peer, StatusCode::FORBIDDEN)
            .await
    }

    async fn device_or(
        &self,
        params: &Params,
        uri: &Uri,
        peer: SocketAddr,
        refusal: StatusCode,
    ) -> Result<Binding, Response> {
        let sn =
            request_sn(params).map_err(|why| (StatusCode::BAD_REQUEST, why).into_response())?;
        let found = self.binding(&sn).await;
        self.known(&sn, found, uri, peer, refusal).await
    }

    /// Whose command queue a polling device reads: a bound device's tenant (with its
    /// binding), or the tenant that unbound it (it still gets its `CLEAR DATA`).
    async fn command_target(
        &self,
        params: &Params,
        uri: &Uri,
        peer: SocketAddr,
    ) -> Result<(TenantId, DeviceSn, Option<Binding>), Response> {
        let sn =
            request_sn(params).map_err(|why| (StatusCode::BAD_REQUEST, why).into_response())?;
        match self.binding(&sn).await {
            Ok(Some(binding)) => return Ok((binding.tenant.clone(), sn, Some(binding))),
            Ok(None) => {}
            Err(e) => {
                tracing::error!(%sn, error = %e, "cannot read the device binding");
                return Err(unavailable());
            }
        }
        let found = self.inner.view.command_tenant(&sn).await;
        let tenant = self
            .known(&sn, found, uri, peer, StatusCode::FORBIDDEN)
            .await?;
        Ok((tenant, sn, None))
    }

    /// One policy for every lookup of a device: found goes on; not found is refused and
    /// recorded as an unknown device; a ledger that cannot answer makes the device retry.
    async fn known<T>(
        &self,
        sn: &DeviceSn,
        found: Result<Option<T>, NotCurrent>,
        uri: &Uri,
        peer: SocketAddr,
        refusal: StatusCode,
    ) -> Result<T, Response> {
        match found {
            Ok(Some(found)) => Ok(found),
            Ok(None) => {
                self.record_unknown(sn, uri, peer).await;
                let body = if refusal == StatusCode::NOT_ACCEPTABLE {
                    "406"
                } else {
                    "device not bound\n"
                };
                Err((refusal, body).into_response())
            }
            Err(e) => {
                tracing::error!(%sn, error = %e, "cannot read the device binding");
                Err(unavailable())
            }
        }
    }

    async fn record_unknown(&self, sn: &DeviceSn, uri: &Uri, peer: SocketAddr) {
        let now = self.now();
        if !self.inner.seen.unknown_due(sn, now) {
            return;
        }
        tracing::warn!(%sn, %peer, "unknown device");
        let hour = now.timestamp() / super::seen::UNKNOWN_DEVICE_EVERY.num_seconds();
        let request: String = uri.to_string().chars().take(512).collect();
        let event = Envelope::new(
            TenantId::system(),
            Actor::Device { sn: sn.clone() },
            UnknownDeviceSeen {
                sn: sn.clone(),
                remote_addr: Some(peer.ip().to_string()),
                request,
            },
            now,
        )
        // Several gateways seeing the same SN in the same hour record it once.
        .with_id(EventId::derived(&[
            "unknown-device",
            sn.as_str(),
            &hour.to_string(),
        ]));
        if let Err(e) = self.ledger().append(&event, Expected::Any).await {
            tracing::error!(%sn, error = %e, "cannot record an unknown device");
        }
    }

    /// Which dialect the device speaks: what the request says, else what it said
    /// before, else whether it registered (only access firmware does), else attendance.
    async fn dialect_of(&self, binding: &Binding, params: &Params) -> Dialect {
        if let Some(dialect) = params.get("DeviceType").and_then(Dialect::from_device_type) {
            self.inner.seen.remember_dialect(&binding.sn, dialect);
            return dialect;
        }
        if let Some(dialect) = self.inner.seen.dialect(&binding.sn) {
            return dialect;
        }
        let dialect = match registration::current(self.ledger(), binding).await {
            Ok(Some(r)) => Dialect::from_device_type(&r.device_type).unwrap_or(Dialect::Access),
            Ok(None) => Dialect::Attendance,
            // Not remembered: asked again next time.
            Err(_) => return Dialect::Attendance,
        };
        self.inner.seen.remember_dialect(&binding.sn, dialect);
        dialect
    }

    /// Notes that a device spoke, with what it said of itself. Recorded as
    /// `DeviceStatusReported` when that changed or a new status period began; several
    /// gateways seeing the same device in one period record one event (derived id).
    async fn note_status(
        &self,
        tenant: &TenantId,
        sn: &DeviceSn,
        binding: Option<&Binding>,
        mut said: Status,
    ) {
        let now = self.now();
        if let (Some(device_time), Some(binding)) = (said.device_time, binding) {
            let local = now.with_timezone(&binding.zone.tz()).naive_local();
            said.clock_drift_seconds = Some((device_time - local).num_seconds());
        }
        let period = status_period(sn, now);
        if self.inner.seen.status(sn).is_none() {
            // After a restart: what the ledger last recorded, so an unchanged device
            // is not recorded again and what it was told is remembered.
            let aggregate = Aggregate::new(AggregateKind::DeviceStatus, sn.as_str());
            if let Ok(Some(recorded)) = self.ledger().last_event(tenant, &aggregate).await
                && let Event::DeviceStatusReported(last) = recorded.envelope.event
            {
                let at = status_period(sn, recorded.envelope.recorded_at);
                self.inner
                    .seen
                    .seed_status(sn, at, Status::from_event(&last));
            }
        }
        let Some(status) = self.inner.seen.note_status(sn, &said, period) else {
            return;
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
            status.event(sn),
            now,
        )
        .with_id(id);
        if let Err(e) = self.ledger().append(&event, Expected::Any).await {
            tracing::warn!(%sn, error = %e, "device status not recorded; trying again next time");
            self.inner.seen.forget_status(sn);
        }
    }

    async fn record_stamp(&self, binding: &Binding, table: &Table, stamp: Option<&str>) {
        let Some(stamp) = stamp.filter(|s| cursors::usable(s)) else {
            return;
        };
        let table = table.name();
        if !options::stamped_tables().any(|t| t == table)
            || !self.inner.seen.stamp_is_new(&binding.sn, &table, stamp)
        {
            return;
        }
        let event = cursors::stamp_event(binding, &table, stamp, self.now());
        match self.ledger().append(&event, Expected::Any).await {
            Ok(_) => self.inner.seen.remember_stamp(&binding.sn, &table, stamp),
            // The records are stored; a cursor not recorded only means the device may
            // send them again.
            Err(e) => {
                tracing::warn!(sn = %binding.sn, %table, error = %e, "upload cursor not recorded")
            }
        }
    }
}

/// The device a request comes from, resolved before the handler runs: a bound device
/// and the request's parameters; an unknown one is answered 403 (and recorded), a
/// ledger that cannot answer 503, and the handler never sees it.
#[derive(Debug)]
pub struct Bound {
    pub params: Params,
    pub binding: Binding,
    pub uri: Uri,
}

impl axum::extract::FromRequestParts<Gateway> for Bound {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        gw: &Gateway,
    ) -> Result<Self, Response> {
        let (params, uri, peer) = request_of(parts);
        let binding = gw.device(&params, &uri, peer).await?;
        Ok(Self {
            params,
            binding,
            uri,
        })
    }
}

/// A device polling for its commands or posting their results: a bound device, or one
/// its tenant unbound (it still gets its `CLEAR DATA`); unknown ones are refused.
#[derive(Debug)]
pub struct Polling {
    pub params: Params,
    pub tenant: TenantId,
    pub sn: DeviceSn,
    pub binding: Option<Binding>,
}

impl axum::extract::FromRequestParts<Gateway> for Polling {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        gw: &Gateway,
    ) -> Result<Self, Response> {
        let (params, uri, peer) = request_of(parts);
        let (tenant, sn, binding) = gw.command_target(&params, &uri, peer).await?;
        Ok(Self {
            params,
            tenant,
            sn,
            binding,
        })
    }
}

/// A request's parameters, target and peer (which the connection layer always sets).
fn request_of(parts: &axum::http::request::Parts) -> (Params, Uri, SocketAddr) {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.0);
    (params(&parts.uri), parts.uri.clone(), peer)
}

/// `GET /iclock/cdata`: the handshake (or, with `type=time`, the time).
pub async fn handshake(
    State(gw): State<Gateway>,
    Bound {
        params: p, binding, ..
    }: Bound,
) -> Response {
    let now = gw.now();
    let offset = offset_seconds(&binding, now);
    if p.get("type")
        .is_some_and(|t| t.eq_ignore_ascii_case("time"))
    {
        let local = now.with_timezone(&binding.zone.tz()).naive_local();
        return text(format!(
            "Time={}\nTimeZone={}\nServerTZ={}\n",
            local.format("%Y-%m-%dT%H:%M:%S"),
            time::time_zone_option(offset),
            time::server_tz(offset)
        ));
    }
    let dialect = gw.dialect_of(&binding, &p).await;
    tracing::info!(sn = %binding.sn, tenant = %binding.tenant, ?dialect, "handshake");
    let said = Status {
        device_type: Some(dialect.device_type().to_owned()),
        ..said_in(&p)
    };
    match dialect {
        Dialect::Access => {
            let registered = match registration::ensure(
                gw.ledger(),
                &binding,
                "acc",
                &Default::default(),
                now,
            )
            .await
            {
                Ok(registered) => registered,
                Err(e) => {
                    tracing::error!(sn = %binding.sn, error = %e, "cannot read the registration");
                    return unavailable();
                }
            };
            gw.note_status(&binding.tenant, &binding.sn, Some(&binding), said)
                .await;
            let session = options::session_id(binding.sn.as_str(), &registered.registry_code);
            text(options::render_access_handshake(
                &registered.registry_code,
                &session,
            ))
        }
        Dialect::Attendance => {
            let stamps = match cursors::load(gw.ledger(), &binding).await {
                Ok(stamps) => stamps,
                Err(e) => {
                    tracing::error!(sn = %binding.sn, error = %e, "cannot read the upload cursors");
                    return unavailable();
                }
            };
            let said = Status {
                utc_offset_told_minutes: Some(offset / 60),
                ..said
            };
            gw.note_status(&binding.tenant, &binding.sn, Some(&binding), said)
                .await;
            text(options::render_attendance(
                binding.sn.as_str(),
                p.get("pushver"),
                &stamps,
                offset,
            ))
        }
    }
}

/// `GET /iclock/rtdata?type=time` (Security PUSH; some firmware says `rttime`): the
/// time as ZKTeco-encoded UTC seconds, and the zone's offset.
pub async fn rtdata(
    State(gw): State<Gateway>,
    Bound {
        params: p, binding, ..
    }: Bound,
) -> Response {
    let kind = p.get("type").unwrap_or("");
    if !(kind.eq_ignore_ascii_case("time") || kind.eq_ignore_ascii_case("rttime")) {
        return (StatusCode::NOT_FOUND, "unknown rtdata type\n").into_response();
    }
    let now = gw.now();
    gw.note_status(&binding.tenant, &binding.sn, Some(&binding), said_in(&p))
        .await;
    text(format!(
        "DateTime={},ServerTZ={}\n",
        time::zk_encode(now.naive_utc()),
        time::server_tz(offset_seconds(&binding, now))
    ))
}

/// `POST /iclock/registry`: a Security-PUSH device registers; a bound one is given its
/// binding's `RegistryCode`, an unknown one 406.
pub async fn registry(
    State(gw): State<Gateway>,
    ConnectInfo(peer): Peer,
    uri: Uri,
    body: Body,
) -> Response {
    let p = params(&uri);
    let binding = match gw
        .device_or(&p, &uri, peer, StatusCode::NOT_ACCEPTABLE)
        .await
    {
        Ok(binding) => binding,
        Err(response) => return response,
    };
    let Ok(body) = axum::body::to_bytes(body, MAX_SMALL_BODY).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "registration too large\n").into_response();
    };
    let said = parse_device_options(&String::from_utf8_lossy(&body));
    let device_type = options::option(&said, &["DeviceType"])
        .or(p.get("DeviceType"))
        .unwrap_or("acc")
        .to_ascii_lowercase();
    let dialect = Dialect::from_device_type(&device_type).unwrap_or(Dialect::Access);
    gw.inner.seen.remember_dialect(&binding.sn, dialect);
    let registered =
        match registration::ensure(gw.ledger(), &binding, &device_type, &said, gw.now()).await {
            Ok(registered) => registered,
            Err(e) => {
                tracing::error!(sn = %binding.sn, error = %e, "registration not recorded");
                return unavailable();
            }
        };
    let status = Status {
        device_type: Some(device_type),
        ..Status::from_options(said)
    };
    gw.note_status(&binding.tenant, &binding.sn, Some(&binding), status)
        .await;
    // Exactly this, no line break: some firmware compares the whole body.
    text(format!("RegistryCode={}", registered.registry_code))
}

/// `GET|POST /iclock/push`: a Security-PUSH device's configuration.
pub async fn push(
    State(gw): State<Gateway>,
    Bound {
        params: p, binding, ..
    }: Bound,
) -> Response {
    gw.inner.seen.remember_dialect(&binding.sn, Dialect::Access);
    let registered =
        match registration::ensure(gw.ledger(), &binding, "acc", &Default::default(), gw.now())
            .await
        {
            Ok(registered) => registered,
            Err(e) => {
                tracing::error!(sn = %binding.sn, error = %e, "cannot read the registration");
                return unavailable();
            }
        };
    gw.note_status(&binding.tenant, &binding.sn, Some(&binding), said_in(&p))
        .await;
    text(options::render_push(&options::session_id(
        binding.sn.as_str(),
        &registered.registry_code,
    )))
}

/// `GET|POST /iclock/ping`: a device keeping its connection alive during a long upload.
/// `OK` only while uploads can be stored: a device that hears 503 holds its records.
pub async fn ping(
    State(gw): State<Gateway>,
    Bound {
        params: p, binding, ..
    }: Bound,
) -> Response {
    match gw.healthy().await {
        Ok(()) => {
            gw.note_status(&binding.tenant, &binding.sn, Some(&binding), said_in(&p))
                .await;
            text("OK\n".into())
        }
        Err(why) => {
            tracing::warn!(sn = %binding.sn, %why, "ping while storage is unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, format!("ERROR: {why}\n")).into_response()
        }
    }
}

/// `POST /iclock/cdata?table=..` and `POST /iclock/querydata?tablename=..`: an upload.
/// Stored (or deliberately ignored, counted and logged) before it is answered.
pub async fn upload(
    State(gw): State<Gateway>,
    Bound {
        params: p,
        binding,
        uri,
    }: Bound,
    body: Body,
) -> Response {
    if !gw.connected() {
        // Nothing can be stored now: the device keeps its records and sends them again.
        return unavailable();
    }
    let querydata = uri.path() == "/iclock/querydata";
    let table = if querydata {
        Table::TableData(p.get("tablename").unwrap_or("").to_ascii_lowercase())
    } else {
        Table::parse(p.get("table").unwrap_or(""), p.get("tablename"))
    };
    match table.handling() {
        Handling::Access => gw.inner.seen.remember_dialect(&binding.sn, Dialect::Access),
        Handling::Attendance => gw
            .inner
            .seen
            .remember_dialect(&binding.sn, Dialect::Attendance),
        _ if querydata || matches!(table, Table::TableData(_)) => {
            gw.inner.seen.remember_dialect(&binding.sn, Dialect::Access);
        }
        _ => {}
    }
    gw.note_status(&binding.tenant, &binding.sn, Some(&binding), said_in(&p))
        .await;
    let stamp = p.get("Stamp").or(p.get("OpStamp")).or(p.get("PhotoStamp"));
    let span = tracing::info_span!("upload", sn = %binding.sn, tenant = %binding.tenant, table = %table.name());
    let stored = tracing::Instrument::instrument(store(&gw, &binding, &table, body), span).await;
    match stored {
        Ok(count) => {
            gw.record_stamp(&binding, &table, stamp).await;
            text(table.answer(count))
        }
        Err(response) => response,
    }
}

/// Stores (or ignores) an upload's body; the count of records answered for.
async fn store(
    gw: &Gateway,
    binding: &Binding,
    table: &Table,
    body: Body,
) -> Result<usize, Response> {
    let now = gw.now();
    let name = table.name();
    match table.handling() {
        Handling::DeviceOptions => {
            let Ok(body) = axum::body::to_bytes(body, MAX_SMALL_BODY).await else {
                return Err((StatusCode::PAYLOAD_TOO_LARGE, "options too large\n").into_response());
            };
            let said = parse_device_options(&String::from_utf8_lossy(&body));
            let count = said.len();
            gw.note_status(
                &binding.tenant,
                &binding.sn,
                Some(binding),
                Status::from_options(said),
            )
            .await;
            Ok(count)
        }
        Handling::Ignore(why) => {
            let mut pieces = Pieces::new(body, MAX_RECORD_LINE);
            let (lines, bytes) = pieces.drain().await;
            if let Some(error) = pieces.error() {
                return Err(incomplete(error));
            }
            gw.inner.seen.ignored(
                &binding.sn,
                &name,
                why,
                lines.max(1),
                &format!("{bytes} bytes"),
                now,
            );
            Ok(lines.max(1))
        }
        handling => {
            let max_line = match handling {
                Handling::Attendance | Handling::Access => MAX_PUNCH_LINE,
                _ => MAX_RECORD_LINE,
            };
            let mut pieces = Pieces::new(body, max_line);
            let mut count = 0;
            while let Some(piece) = pieces.next(LINES_PER_PIECE, PIECE_BYTES).await {
                let (events, answered) = piece_events(gw, binding, table, handling, piece, now);
                count += answered;
                if let Err(e) = gw.ledger().append_many(&events).await {
                    tracing::error!(error = %e, stored_before = count - answered, "upload not stored; the device will send it again");
                    return Err(unavailable());
                }
            }
            if let Some(error) = pieces.error() {
                // What came is stored; the device sends the whole again.
                return Err(incomplete(error));
            }
            tracing::debug!(records = count, "upload stored");
            Ok(count)
        }
    }
}

fn incomplete(error: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        format!("ERROR: body incomplete ({error}), send again\n"),
    )
        .into_response()
}

/// The events of one piece of a body, and how many records it answers for.
fn piece_events(
    gw: &Gateway,
    binding: &Binding,
    table: &Table,
    handling: Handling,
    piece: super::body::Piece,
    now: DateTime<Utc>,
) -> (Vec<Envelope>, usize) {
    let name = table.name();
    let too_long = |raw: &String| DeviceRecordRejected {
        sn: binding.sn.clone(),
        raw: raw.clone(),
        reason: RejectionReason::LineTooLong,
        detail: Some("longer than any record a device writes".into()),
    };
    match handling {
        Handling::Attendance | Handling::Access => {
            let text = String::from_utf8_lossy(&piece.text);
            let mut upload = if handling == Handling::Attendance {
                ingest::read_attlog(binding, &text, now)
            } else {
                ingest::read_access(binding, &text, now)
            };
            upload.rejected.extend(piece.cut.iter().map(too_long));
            gw.inner
                .seen
                .rejected(&binding.sn, &name, &upload.rejected, now);
            for (line, why) in &upload.ignored {
                gw.inner.seen.ignored(&binding.sn, &name, why, 1, line, now);
            }
            (ingest::upload_events(binding, &upload, now), upload.lines())
        }
        Handling::Records(untagged) => {
            let text = crate::protocol::operlog::decode_body(&piece.text);
            let mut upload = operlog_ingest::read_records(binding, &text, untagged);
            for cut in &piece.cut {
                upload.events.push((cut.clone(), too_long(cut).into()));
            }
            let rejected: Vec<DeviceRecordRejected> = upload
                .events
                .iter()
                .filter_map(|(_, e)| match e {
                    Event::DeviceRecordRejected(r) => Some(r.clone()),
                    _ => None,
                })
                .collect();
            gw.inner.seen.rejected(&binding.sn, &name, &rejected, now);
            for (line, why) in &upload.ignored {
                gw.inner.seen.ignored(&binding.sn, &name, why, 1, line, now);
            }
            (
                operlog_ingest::oper_events(binding, &upload, now),
                upload.lines(),
            )
        }
        Handling::Keep => {
            let text = String::from_utf8_lossy(&piece.text);
            let mut lines: Vec<String> = crate::protocol::attlog::lines(&text)
                .map(str::to_owned)
                .collect();
            lines.extend(piece.cut.iter().cloned());
            let count = lines.len();
            tracing::warn!(sn = %binding.sn, table = %name, lines = count, "table not understood; kept as sent");
            (kept_events(binding, &name, lines, now), count)
        }
        Handling::DeviceOptions | Handling::Ignore(_) => (Vec::new(), 0),
    }
}

/// Lines of a table nobody here reads, kept as sent, a bounded number per event.
fn kept_events(
    binding: &Binding,
    table: &str,
    lines: Vec<String>,
    now: DateTime<Utc>,
) -> Vec<Envelope> {
    let mut events = Vec::new();
    let mut batch: Vec<String> = Vec::new();
    let mut bytes = 0;
    let flush = |batch: &mut Vec<String>, events: &mut Vec<Envelope>| {
        if batch.is_empty() {
            return;
        }
        let lines = std::mem::take(batch);
        let mut parts = vec![
            "unrecognised",
            binding.tenant.as_str(),
            binding.sn.as_str(),
            table,
        ];
        parts.extend(lines.iter().map(String::as_str));
        let id = EventId::derived(&parts);
        events.push(
            Envelope::new(
                binding.tenant.clone(),
                Actor::Device {
                    sn: binding.sn.clone(),
                },
                DeviceUploadUnrecognised {
                    sn: binding.sn.clone(),
                    table: table.to_owned(),
                    query: String::new(),
                    lines,
                },
                now,
            )
            .with_id(id),
        );
    };
    for line in lines {
        if !batch.is_empty()
            && (batch.len() >= KEPT_LINES_PER_EVENT || bytes + line.len() > KEPT_BYTES_PER_EVENT)
        {
            flush(&mut batch, &mut events);
            bytes = 0;
        }
        bytes += line.len();
        batch.push(line);
    }
    flush(&mut batch, &mut events);
    events
}

/// `GET /iclock/getrequest`: the commands waiting for the device, as many as one reply
/// may carry.
pub async fn get_request(
    State(gw): State<Gateway>,
    Polling {
        params: p,
        tenant,
        sn,
        binding,
    }: Polling,
) -> Response {
    let said = match p.get("INFO") {
        Some(info) => Status::from_info_param(info).merged(&said_in(&p)),
        None => said_in(&p),
    };
    gw.note_status(&tenant, &sn, binding.as_ref(), said).await;
    if !gw.connected() {
        return unavailable();
    }
    let now = gw.now();
    let dialect = match &binding {
        Some(binding) => gw.dialect_of(binding, &p).await,
        None => Dialect::Attendance,
    };
    let ledger = gw.ledger();
    let view = &gw.inner.view;
    let result = async {
        // A daylight-saving change since the device was last told its offset.
        if let Some(binding) = &binding
            && dialect == Dialect::Attendance
        {
            let told = gw.inner.seen.status(&sn).and_then(|(_, s)| s.utc_offset_told_minutes);
            let offset = offset_seconds(binding, now) / 60;
            let update = view
                .with_queue(&tenant, &sn, |queue, _| commands::time_zone_update(queue, told, offset))
                .await?;
            if let Some(command) = update {
                let gateway = Actor::System { component: "gateway".into() };
                let act = ::commands::devices::DeviceAct::Send { sn: sn.clone(), command, expires_at: None };
                let request = ::commands::Request::new(tenant.clone(), gateway, act);
                let (id, stored) = ::commands::devices::execute_queueing(ledger, &request, now)
                    .await
                    .map_err(|e| match e {
                        ::commands::CommandError::Ledger(e) => NotCurrent::Ledger(e),
                        other => NotCurrent::Ledger(ledger::LedgerError::Rejected(other.to_string())),
                    })?;
                let sequence = stored.iter().map(|s| s.sequence).max().unwrap_or(0);
                tracing::info!(%sn, command = id, offset_minutes = offset, "zone offset changed; telling the device");
                let told = Status {
                    utc_offset_told_minutes: Some(offset),
                    ..Status::default()
                };
                gw.note_status(&tenant, &sn, Some(binding), told).await;
                view.caught_up(&tenant, sequence).await?;
            }
        }
        let limits = DeliveryLimits::for_dialect(dialect);
        let (deliver, events) = view
            .with_queue(&tenant, &sn, |queue, _| commands::poll(queue, &sn, now, dialect, limits))
            .await?;
        // Recorded as delivered before the device hears of them: a lost reply is
        // redelivered later, a lost record would never be. The view shows them before
        // the answer goes, so this gateway's next poll does not deliver them again.
        let envelopes: Vec<Envelope> = events
            .into_iter()
            .map(|e| Envelope::new(tenant.clone(), Actor::Device { sn: sn.clone() }, e, now))
            .collect();
        record_seen(gw.ledger(), view, &tenant, &envelopes).await?;
        Ok::<_, NotCurrent>(deliver)
    }
    .await;
    match result {
        Ok(deliver) if deliver.is_empty() => text("OK\n".into()),
        Ok(deliver) => {
            tracing::info!(%sn, commands = deliver.len(), "commands delivered");
            let lines: String = deliver
                .iter()
                .map(|(id, command)| {
                    format!(
                        "C:{id}:{}\n",
                        crate::protocol::commands::render(command, dialect)
                    )
                })
                .collect();
            text(lines)
        }
        Err(e) => {
            tracing::error!(%sn, error = %e, "cannot serve commands");
            unavailable()
        }
    }
}

/// `POST /iclock/devicecmd`: results of commands (several a body); an `INFO` reply's
/// `key=value` lines are the device's status.
pub async fn device_cmd(
    State(gw): State<Gateway>,
    Polling {
        tenant,
        sn,
        binding,
        ..
    }: Polling,
    body: Body,
) -> Response {
    let Ok(body) = axum::body::to_bytes(body, 4 * 1024 * 1024).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "results too large\n").into_response();
    };
    let now = gw.now();
    let (posted, skipped) =
        crate::protocol::commands::parse_results(&String::from_utf8_lossy(&body));
    match Status::from_info_reply(skipped.iter().map(String::as_str)) {
        Some(said) => gw.note_status(&tenant, &sn, binding.as_ref(), said).await,
        None => {
            for line in skipped.iter().take(3) {
                tracing::warn!(%sn, line = %crate::protocol::kept_line(line).escape_debug(), "command result not understood");
            }
        }
    }
    let view = &gw.inner.view;
    let result = async {
        let envelopes: Vec<Envelope> = view
            .with_queue(&tenant, &sn, |queue, _| {
                commands::results(queue, &sn, &posted)
            })
            .await?
            .into_iter()
            .map(|e| Envelope::new(tenant.clone(), Actor::Device { sn: sn.clone() }, e, now))
            .collect();
        record_seen(gw.ledger(), view, &tenant, &envelopes).await?;
        Ok::<_, NotCurrent>(envelopes.len())
    }
    .await;
    match result {
        Ok(recorded) => {
            tracing::info!(%sn, results = posted.len(), recorded, "command results");
            text("OK\n".into())
        }
        Err(e) => {
            tracing::error!(%sn, error = %e, "cannot record command results; the device will send them again");
            unavailable()
        }
    }
}

/// Appends a device's command events and waits until this gateway's view shows them.
async fn record_seen(
    ledger: &ledger::Ledger,
    view: &View,
    tenant: &TenantId,
    envelopes: &[Envelope],
) -> Result<(), NotCurrent> {
    if envelopes.is_empty() {
        return Ok(());
    }
    let appended = ledger.append_many(envelopes).await?;
    match appended.iter().map(|a| a.sequence).max() {
        Some(last) => view.caught_up(tenant, last).await,
        None => Ok(()),
    }
}
