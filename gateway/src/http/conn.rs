//! The gateway's own HTTP/1.1 server: how bytes on a device's connection become requests
//! for the router, and answers become bytes again.
//!
//! Why not hyper's server: attendance firmware is not a well-behaved HTTP client, and the
//! cases where it is not are exactly the ones that lose punches.
//! - A body with no `Content-Length` (firmware that sends `Connection: close`) runs to
//!   the end of the connection, or until the device stops sending; HTTP says such a
//!   request has no body, so a standard server answers `OK: 0` and the records vanish.
//! - A body longer than its `Content-Length`: the bytes beyond it are not a second
//!   request. Bytes after a body that do not start a request line are the rest of that
//!   body; the request is read on to the end of what the device sends and the
//!   connection closes after the answer (see ARCHITECTURE.md, "Device HTTP").
//! - Limits that a hostile peer on the LAN cannot starve: a deadline for a request's
//!   head, an idle limit for bodies, a cap on connections (from the descriptor limit)
//!   with the oldest connection that is only waiting for a head shed to make room, a
//!   cap on head size, and bodies streamed to the handler through a channel of one
//!   chunk, so memory per connection is bounded whatever the body's size.
//!
//! Routing, extraction and handlers stay axum's: a parsed request is handed to the
//! `Router` as a `tower` service. Answers carry `Content-Length`, a `Date` from the
//! gateway's clock (devices set their clocks from it) and `Connection: close` when
//! the connection will not be reused.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tower::ServiceExt;

use super::Clock;

/// How much a connection may take. Every limit is per connection except
/// `max_connections`.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections served at once. At the cap, the connection that has waited longest
    /// for a request head (and at least `shed_after`) is closed to make room; if none
    /// has, the newcomer is (a device tries again seconds later).
    pub max_connections: usize,
    /// How long a new connection may wait for its head before it can be closed to make
    /// room: one accepted in a burst is not closed before it could speak.
    pub shed_after: Duration,
    /// From a request's first byte (or the connection's opening) to the end of its head.
    pub head_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// The longest silence inside a body before the request is given up.
    pub body_idle_timeout: Duration,
    /// A body without a length ends when the connection closes or the device has sent
    /// nothing for this long.
    pub unframed_body_end: Duration,
    /// After a device body (on `/iclock/`) that ends exactly at its `Content-Length`
    /// but not at a line's end, how long to wait for the rest of the line.
    pub overrun_grace: Duration,
    pub max_head_bytes: usize,
    /// The largest body read, in bytes; a device re-sending a whole history stays far
    /// below it.
    pub max_body_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            shed_after: Duration::from_millis(250),
            head_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            body_idle_timeout: Duration::from_secs(20),
            unframed_body_end: Duration::from_secs(1),
            overrun_grace: Duration::from_millis(50),
            max_head_bytes: 16 * 1024,
            max_body_bytes: 256 * 1024 * 1024,
        }
    }
}

impl Limits {
    /// The defaults, with `max_connections` fitted to this process's descriptor limit
    /// (raised to its hard limit first), leaving `reserve` descriptors for NATS, logs and
    /// the rest.
    pub fn fitted_to_descriptors(reserve: u64) -> Self {
        let limit = raise_descriptor_limit();
        Self {
            max_connections: limit.saturating_sub(reserve).max(16) as usize,
            ..Self::default()
        }
    }
}

/// Raises the soft descriptor limit to the hard one; returns the soft limit in force.
fn raise_descriptor_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) => {
            if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
                hard
            } else {
                soft
            }
        }
        Err(_) => 1024,
    }
}

/// What the connection layer has seen, for the health answer and logs.
#[derive(Debug, Default)]
pub struct ConnCounters {
    pub accepted: AtomicU64,
    /// Waiting for a head and closed to make room for a newer connection.
    pub shed: AtomicU64,
    /// Closed on arrival: every slot was busy with a request.
    pub refused: AtomicU64,
    pub head_timeouts: AtomicU64,
    pub body_timeouts: AtomicU64,
    pub bad_requests: AtomicU64,
    /// Device bodies that ran past their `Content-Length`, read to their end.
    pub overruns: AtomicU64,
    /// Bodies without a length, read to the end of the connection.
    pub unframed_bodies: AtomicU64,
    pub open: AtomicUsize,
}

impl ConnCounters {
    pub fn snapshot(&self) -> serde_json::Value {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        serde_json::json!({
            "open": self.open.load(Ordering::Relaxed),
            "accepted": get(&self.accepted),
            "shed": get(&self.shed),
            "refused": get(&self.refused),
            "head_timeouts": get(&self.head_timeouts),
            "body_timeouts": get(&self.body_timeouts),
            "bad_requests": get(&self.bad_requests),
            "overruns": get(&self.overruns),
            "unframed_bodies": get(&self.unframed_bodies),
        })
    }
}

/// Which connections are only waiting for a head, oldest first: the ones that can be
/// closed to make room.
#[derive(Default)]
struct Registry {
    state: Mutex<RegistryState>,
    drained: Notify,
}

#[derive(Default)]
struct RegistryState {
    next_id: u64,
    open: usize,
    /// By when each began to wait, oldest first.
    waiting: BTreeMap<(Instant, u64), Arc<Notify>>,
    since: std::collections::HashMap<u64, Instant>,
    closing: bool,
}

impl Registry {
    fn open(self: &Arc<Self>) -> (u64, Arc<Notify>) {
        let mut state = self.state.lock().expect("not poisoned");
        state.next_id += 1;
        state.open += 1;
        (state.next_id, Arc::new(Notify::new()))
    }

    fn closed(&self, id: u64) {
        let mut state = self.state.lock().expect("not poisoned");
        if let Some(since) = state.since.remove(&id) {
            state.waiting.remove(&(since, id));
        }
        state.open -= 1;
        if state.open == 0 {
            self.drained.notify_waiters();
        }
    }

    /// Marks a connection as only waiting; `false` if the server is shutting down.
    fn waiting(&self, id: u64, shed: &Arc<Notify>) -> bool {
        let mut state = self.state.lock().expect("not poisoned");
        if state.closing {
            return false;
        }
        let now = Instant::now();
        state.since.insert(id, now);
        state.waiting.insert((now, id), shed.clone());
        true
    }

    fn busy(&self, id: u64) {
        let mut state = self.state.lock().expect("not poisoned");
        if let Some(since) = state.since.remove(&id) {
            state.waiting.remove(&(since, id));
        }
    }

    fn open_count(&self) -> usize {
        self.state.lock().expect("not poisoned").open
    }

    /// Closes the connection that has waited longest, if it has waited `at_least`;
    /// `false` if none has.
    fn shed_oldest(&self, at_least: Duration) -> bool {
        let mut state = self.state.lock().expect("not poisoned");
        let Some((&(since, id), _)) = state.waiting.first_key_value() else {
            return false;
        };
        if since.elapsed() < at_least {
            return false;
        }
        let shed = state.waiting.remove(&(since, id)).expect("just seen");
        state.since.remove(&id);
        shed.notify_one();
        true
    }

    fn close_waiting(&self) {
        let mut state = self.state.lock().expect("not poisoned");
        state.closing = true;
        state.since.clear();
        for (_, shed) in std::mem::take(&mut state.waiting) {
            shed.notify_one();
        }
    }
}

/// Recognises the requests devices make: given a request target (path and query), the
/// target to route if it is a device's (tolerant framing, normalised path), `None` for
/// anything else (served as plain HTTP).
pub type DeviceTarget = fn(&str) -> Option<String>;

/// Everything a connection task needs.
struct Shared {
    router: Router,
    limits: Limits,
    clock: Clock,
    device_target: DeviceTarget,
    counters: Arc<ConnCounters>,
    registry: Arc<Registry>,
}

/// Serves `router` on `listener` until `shutdown` resolves; then stops accepting,
/// closes connections that wait for a request, and lets requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    clock: Clock,
    device_target: DeviceTarget,
    counters: Arc<ConnCounters>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let shared = Arc::new(Shared {
        router,
        limits,
        clock,
        device_target,
        counters,
        registry: Arc::new(Registry::default()),
    });
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                shared.counters.accepted.fetch_add(1, Ordering::Relaxed);
                if shared.registry.open_count() >= shared.limits.max_connections {
                    if shared.registry.shed_oldest(shared.limits.shed_after) {
                        shared.counters.shed.fetch_add(1, Ordering::Relaxed);
                    } else {
                        // Every slot is busy with a request: the newcomer goes.
                        shared.counters.refused.fetch_add(1, Ordering::Relaxed);
                        drop(stream);
                        continue;
                    }
                }
                let _ = stream.set_nodelay(true);
                // Counted before the next accept, so a burst cannot overrun the cap.
                let (id, shed) = shared.registry.open();
                shared.counters.open.fetch_add(1, Ordering::Relaxed);
                let shared = shared.clone();
                tokio::spawn(async move {
                    serve_connection(&shared, stream, peer, id, &shed).await;
                    shared.counters.open.fetch_sub(1, Ordering::Relaxed);
                    shared.registry.closed(id);
                });
            }
            Err(e) => {
                // Out of descriptors (EMFILE/ENFILE) or a connection reset before it
                // was accepted: make room and go on; the accept loop never ends on it.
                if matches!(e.raw_os_error(), Some(24 | 23)) {
                    shared.registry.shed_oldest(Duration::ZERO);
                    tracing::warn!(error = %e, "out of descriptors; closed a waiting connection");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                } else {
                    tracing::debug!(error = %e, "accept failed");
                }
            }
        }
    }
    drop(listener);
    shared.registry.close_waiting();
    // Requests in flight are answered (uploads acknowledged or refused), within reason.
    let drained = async {
        while shared.registry.open_count() > 0 {
            let notified = shared.registry.drained.notified();
            if shared.registry.open_count() == 0 {
                break;
            }
            notified.await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(30), drained).await;
    Ok(())
}

/// A connection's bytes: what has been read and not yet used.
struct Conn {
    rd: OwnedReadHalf,
    wr: OwnedWriteHalf,
    buf: BytesMut,
}

impl Conn {
    /// Reads more into the buffer; `Ok(0)` at the end of the connection.
    async fn fill(&mut self, within: Duration) -> Result<usize, Stop> {
        // Small for a connection that only waits (tens of thousands may), growing by
        // doubling for one that sends a body.
        if self.buf.capacity() - self.buf.len() < 512 {
            self.buf.reserve(self.buf.len().clamp(1024, CHUNK));
        }
        match tokio::time::timeout(within, self.rd.read_buf(&mut self.buf)).await {
            Ok(Ok(n)) => Ok(n),
            Ok(Err(_)) => Err(Stop::Gone),
            Err(_) => Err(Stop::TimedOut),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Gone,
    TimedOut,
}

/// A request head, owned.
#[derive(Debug, Clone)]
struct Head {
    method: String,
    target: String,
    http10: bool,
    headers: Vec<(String, Vec<u8>)>,
}

impl Head {
    fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(|b| *b == b','))
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    }

    fn wants_close(&self) -> bool {
        if self.http10 {
            !self.has_token("connection", "keep-alive")
        } else {
            self.has_token("connection", "close")
        }
    }
}

/// How a body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    /// To the end of the connection, or until the device stops sending.
    UntilEnd,
}

enum HeadRead {
    Head(Head),
    /// Bytes that are not a request line where a request should start.
    NotARequest,
    Malformed(&'static str),
    TooLarge,
    Closed,
}

/// Whether `bytes` can be the start of a request line: a method token, a space, a
/// target. A prefix too short to tell counts as one.
fn looks_like_request(bytes: &[u8]) -> bool {
    let method_len = bytes.iter().take_while(|b| b.is_ascii_uppercase()).count();
    match bytes.get(method_len) {
        None => method_len == bytes.len() && method_len <= 10,
        Some(b' ') => {
            (3..=10).contains(&method_len)
                && bytes
                    .get(method_len + 1)
                    .is_none_or(|b| *b == b'/' || *b == b'*')
        }
        Some(_) => false,
    }
}

async fn read_head(
    conn: &mut Conn,
    limits: &Limits,
    first_wait: Duration,
) -> Result<HeadRead, Stop> {
    // Blank lines between requests are tolerated (RFC 9112 §2.2).
    let mut deadline: Option<Instant> = None;
    loop {
        while conn.buf.first().is_some_and(|b| *b == b'\r' || *b == b'\n') {
            conn.buf.advance(1);
        }
        if !conn.buf.is_empty() {
            if !looks_like_request(&conn.buf) {
                return Ok(HeadRead::NotARequest);
            }
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut request = httparse::Request::new(&mut headers);
            match request.parse(&conn.buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let head = Head {
                        method: request.method.unwrap_or("GET").to_owned(),
                        target: request.path.unwrap_or("/").to_owned(),
                        http10: request.version == Some(0),
                        headers: request
                            .headers
                            .iter()
                            .map(|h| (h.name.to_owned(), h.value.to_vec()))
                            .collect(),
                    };
                    conn.buf.advance(len);
                    return Ok(HeadRead::Head(head));
                }
                Ok(httparse::Status::Partial) => {}
                Err(httparse::Error::TooManyHeaders) => {
                    return Ok(HeadRead::Malformed("too many headers"));
                }
                Err(_) => return Ok(HeadRead::Malformed("malformed request head")),
            }
            if conn.buf.len() > limits.max_head_bytes {
                return Ok(HeadRead::TooLarge);
            }
        }
        let wait = match deadline {
            Some(deadline) => deadline.saturating_duration_since(Instant::now()),
            None if conn.buf.is_empty() => first_wait,
            None => {
                let at = Instant::now() + limits.head_timeout;
                deadline = Some(at);
                limits.head_timeout
            }
        };
        if wait.is_zero() {
            return Err(Stop::TimedOut);
        }
        let n = conn.fill(wait).await?;
        if n == 0 {
            return Ok(HeadRead::Closed);
        }
        if deadline.is_none() {
            deadline = Some(Instant::now() + limits.head_timeout);
        }
    }
}

fn framing(head: &Head) -> Result<Framing, &'static str> {
    if head.has_token("transfer-encoding", "chunked") {
        return Ok(Framing::Chunked);
    }
    let lengths: Vec<&[u8]> = head
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.as_slice())
        .collect();
    match lengths.as_slice() {
        [] if matches!(head.method.as_str(), "POST" | "PUT" | "PATCH") => Ok(Framing::UntilEnd),
        [] => Ok(Framing::Empty),
        [first, rest @ ..] => {
            let n = std::str::from_utf8(first)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or("invalid Content-Length")?;
            if rest.iter().any(|v| v.trim_ascii() != first.trim_ascii()) {
                return Err("conflicting Content-Length headers");
            }
            Ok(if n == 0 {
                Framing::Empty
            } else {
                Framing::Length(n)
            })
        }
    }
}

/// How a body's reading ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fed {
    /// The connection can carry another request.
    reusable: bool,
}

type BodyTx = mpsc::Sender<Result<Bytes, std::io::Error>>;

/// The largest piece of body handed over at once.
const CHUNK: usize = 64 * 1024;

/// Reads a body off `conn` into `tx`, piece by piece as the handler takes them.
async fn feed(
    conn: &mut Conn,
    framing: Framing,
    tx: BodyTx,
    limits: &Limits,
    counters: &ConnCounters,
    device: bool,
    expect_continue: bool,
) -> Fed {
    if expect_continue && framing != Framing::Empty && conn.buf.is_empty() {
        // Wait until the handler wants the body: an unknown device never sends it.
        if tx.reserve().await.is_err() {
            return Fed { reusable: false };
        }
        if conn
            .wr
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .await
            .is_err()
        {
            return Fed { reusable: false };
        }
    }
    let mut total = 0u64;
    let send = |piece: Bytes, total: &mut u64| {
        *total += piece.len() as u64;
        let tx = tx.clone();
        async move { tx.send(Ok(piece)).await.is_ok() }
    };
    let fail = |kind: std::io::ErrorKind, why: &'static str| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(Err(std::io::Error::new(kind, why))).await;
        }
    };
    let mut framing = framing;
    let mut reusable = true;
    loop {
        match framing {
            Framing::Empty => break,
            Framing::Length(length) => {
                let mut remaining = length;
                let mut last = b'\n';
                while remaining > 0 {
                    if conn.buf.is_empty() {
                        match conn.fill(limits.body_idle_timeout).await {
                            Ok(0) | Err(Stop::Gone) => {
                                // Cut short: what came is handed over, and the handler
                                // learns that the rest did not.
                                fail(std::io::ErrorKind::UnexpectedEof, "body cut short").await;
                                return Fed { reusable: false };
                            }
                            Err(Stop::TimedOut) => {
                                counters.body_timeouts.fetch_add(1, Ordering::Relaxed);
                                fail(std::io::ErrorKind::TimedOut, "body timed out").await;
                                return Fed { reusable: false };
                            }
                            Ok(_) => {}
                        }
                    }
                    let take = (remaining.min(CHUNK as u64) as usize).min(conn.buf.len());
                    let piece = conn.buf.split_to(take).freeze();
                    last = piece.last().copied().unwrap_or(last);
                    remaining -= take as u64;
                    if !send(piece, &mut total).await {
                        return Fed { reusable: false };
                    }
                }
                if !device {
                    break;
                }
                // A device body is the rest of what the device sends up to the next
                // request line, whatever its Content-Length said.
                let overrun = if !conn.buf.is_empty() {
                    !looks_like_request(&conn.buf)
                } else if last != b'\n' {
                    matches!(conn.fill(limits.overrun_grace).await, Ok(n) if n > 0)
                        && !looks_like_request(&conn.buf)
                } else {
                    false
                };
                if !overrun {
                    break;
                }
                counters.overruns.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    declared = length,
                    "device body runs past its Content-Length; reading it to its end"
                );
                reusable = false;
                framing = Framing::UntilEnd;
            }
            Framing::UntilEnd => {
                reusable = false;
                counters.unframed_bodies.fetch_add(1, Ordering::Relaxed);
                loop {
                    if !conn.buf.is_empty() {
                        let take = conn.buf.len().min(CHUNK);
                        let piece = conn.buf.split_to(take).freeze();
                        if !send(piece, &mut total).await {
                            return Fed { reusable: false };
                        }
                        if total > limits.max_body_bytes {
                            fail(std::io::ErrorKind::InvalidData, "body too large").await;
                            return Fed { reusable: false };
                        }
                        continue;
                    }
                    match conn.fill(limits.unframed_body_end).await {
                        Ok(0) | Err(Stop::Gone | Stop::TimedOut) => break,
                        Ok(_) => {}
                    }
                }
                break;
            }
            Framing::Chunked => match read_chunked(conn, limits, &tx, &mut total, counters).await {
                Ok(()) => break,
                Err(()) => return Fed { reusable: false },
            },
        }
        if total > limits.max_body_bytes {
            fail(std::io::ErrorKind::InvalidData, "body too large").await;
            return Fed { reusable: false };
        }
    }
    Fed { reusable }
}

/// A `Transfer-Encoding: chunked` body; trailers are read and dropped.
async fn read_chunked(
    conn: &mut Conn,
    limits: &Limits,
    tx: &BodyTx,
    total: &mut u64,
    counters: &ConnCounters,
) -> Result<(), ()> {
    let fail = |why: &'static str| async move {
        let _ = tx
            .send(Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                why,
            )))
            .await;
        Err(())
    };
    loop {
        let line = match read_line(conn, limits).await {
            Some(line) => line,
            None => {
                counters.body_timeouts.fetch_add(1, Ordering::Relaxed);
                return fail("chunked body cut short").await;
            }
        };
        let size_text = String::from_utf8_lossy(&line);
        let size_text = size_text.split(';').next().unwrap_or("").trim().to_owned();
        let Ok(size) = u64::from_str_radix(&size_text, 16) else {
            return fail("invalid chunk size").await;
        };
        if size == 0 {
            // Trailers, up to the blank line.
            loop {
                match read_line(conn, limits).await {
                    Some(line) if line.is_empty() => return Ok(()),
                    Some(_) => {}
                    None => return Ok(()),
                }
            }
        }
        *total += size;
        if *total > limits.max_body_bytes {
            return fail("body too large").await;
        }
        let mut remaining = size;
        while remaining > 0 {
            if conn.buf.is_empty()
                && !matches!(conn.fill(limits.body_idle_timeout).await, Ok(n) if n > 0)
            {
                return fail("chunked body cut short").await;
            }
            let take = (remaining.min(CHUNK as u64) as usize).min(conn.buf.len());
            remaining -= take as u64;
            if tx.send(Ok(conn.buf.split_to(take).freeze())).await.is_err() {
                return Err(());
            }
        }
        match read_line(conn, limits).await {
            Some(line) if line.is_empty() => {}
            _ => return fail("chunk not followed by CRLF").await,
        }
    }
}

/// One CRLF- or LF-terminated line, without its ending.
async fn read_line(conn: &mut Conn, limits: &Limits) -> Option<Vec<u8>> {
    loop {
        if let Some(end) = conn.buf.iter().position(|b| *b == b'\n') {
            let mut line = conn.buf.split_to(end + 1).to_vec();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Some(line);
        }
        if conn.buf.len() > limits.max_head_bytes {
            return None;
        }
        match conn.fill(limits.body_idle_timeout).await {
            Ok(n) if n > 0 => {}
            _ => return None,
        }
    }
}

async fn serve_connection(
    shared: &Shared,
    stream: TcpStream,
    peer: SocketAddr,
    id: u64,
    shed: &Arc<Notify>,
) {
    let (rd, wr) = stream.into_split();
    let mut conn = Conn {
        rd,
        wr,
        buf: BytesMut::new(),
    };
    let limits = &shared.limits;
    // The last device POST on this connection: bytes after it that are not a request
    // are the rest of its body.
    let mut previous: Option<Head> = None;
    let mut first = true;
    loop {
        if !shared.registry.waiting(id, shed) {
            return;
        }
        let wait = if first {
            limits.head_timeout
        } else {
            limits.idle_timeout
        };
        let read = tokio::select! {
            read = read_head(&mut conn, limits, wait) => read,
            () = shed.notified() => return,
        };
        shared.registry.busy(id);
        first = false;
        let (head, late_rest) = match read {
            Ok(HeadRead::Head(head)) => (head, false),
            Ok(HeadRead::Closed) | Err(Stop::Gone) => return,
            Err(Stop::TimedOut) => {
                if !conn.buf.is_empty() {
                    shared
                        .counters
                        .head_timeouts
                        .fetch_add(1, Ordering::Relaxed);
                }
                return;
            }
            Ok(HeadRead::NotARequest) => match previous.take() {
                Some(head) => {
                    // The rest of the last body arrived after it was answered: store it
                    // too (its records are idempotent), then close.
                    shared.counters.overruns.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%peer, "bytes after an answered device body; storing them as its rest");
                    (head, true)
                }
                None => {
                    refuse(
                        &mut conn,
                        shared,
                        StatusCode::BAD_REQUEST,
                        "not an HTTP request\n",
                    )
                    .await;
                    return;
                }
            },
            Ok(HeadRead::Malformed(why)) => {
                refuse(
                    &mut conn,
                    shared,
                    StatusCode::BAD_REQUEST,
                    &format!("{why}\n"),
                )
                .await;
                return;
            }
            Ok(HeadRead::TooLarge) => {
                refuse(
                    &mut conn,
                    shared,
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    "request head too large\n",
                )
                .await;
                return;
            }
        };
        // Boxed: a connection that only waits holds the small future above, not this.
        match Box::pin(exchange(shared, &mut conn, peer, head, late_rest)).await {
            Some(next) => previous = next,
            None => return,
        }
    }
}

/// One request on a connection, from its head to its answer: `None` when the connection
/// ends here; otherwise the head to read further bytes against when it was a device
/// POST (bytes after its body that are not a request are the rest of that body).
async fn exchange(
    shared: &Shared,
    conn: &mut Conn,
    peer: SocketAddr,
    head: Head,
    late_rest: bool,
) -> Option<Option<Head>> {
    let limits = &shared.limits;
    let mut head = head;
    let device = match (shared.device_target)(&head.target) {
        Some(target) => {
            head.target = target;
            true
        }
        None => false,
    };
    let framing = if late_rest {
        Framing::UntilEnd
    } else {
        match framing(&head) {
            Ok(framing) => framing,
            Err(why) => {
                refuse(conn, shared, StatusCode::BAD_REQUEST, &format!("{why}\n")).await;
                return None;
            }
        }
    };
    if let Framing::Length(n) = framing
        && n > limits.max_body_bytes
    {
        let _ = write_simple(
            conn,
            shared,
            StatusCode::PAYLOAD_TOO_LARGE,
            "body too large\n",
        )
        .await;
        return None;
    }
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    let request = match build_request(&head, rx, peer) {
        Ok(request) => request,
        Err(why) => {
            refuse(conn, shared, StatusCode::BAD_REQUEST, &format!("{why}\n")).await;
            return None;
        }
    };
    let expect_continue = head.has_token("expect", "100-continue");
    let handled = shared.router.clone().oneshot(request);
    tokio::pin!(handled);
    let (response, fed) = {
        let feeding = feed(
            conn,
            framing,
            tx,
            limits,
            &shared.counters,
            device,
            expect_continue,
        );
        tokio::pin!(feeding);
        let mut fed: Option<Fed> = None;
        let response = loop {
            tokio::select! {
                done = &mut feeding, if fed.is_none() => fed = Some(done),
                response = &mut handled => break response,
            }
        };
        // A handler that answered before the body ended (an unknown device, a
        // refused request) leaves the rest unread: the connection cannot be reused.
        let fed = fed.or_else(|| futures::FutureExt::now_or_never(&mut feeding));
        (response, fed.unwrap_or(Fed { reusable: false }))
    };
    let response = match response {
        Ok(response) => response,
        Err(never) => match never {},
    };
    if late_rest {
        // Its answer was given with the first part.
        return None;
    }
    let keep = fed.reusable && !head.wants_close() && framing != Framing::UntilEnd;
    if write_response(conn, shared, response, keep, head.method == "HEAD")
        .await
        .is_err()
        || !keep
    {
        let _ = conn.wr.shutdown().await;
        linger(conn).await;
        return None;
    }
    Some((device && head.method == "POST").then_some(head))
}

/// After an answer that closes the connection before its body was read (an unknown
/// device's 403), reads and drops what still arrives for a moment: closing with unread
/// bytes resets the connection, and the client would lose the answer.
async fn linger(conn: &mut Conn) {
    let until = Instant::now() + Duration::from_secs(2);
    let mut dropped = 0usize;
    let mut scratch = [0u8; 16 * 1024];
    while dropped < 4 * 1024 * 1024 {
        let left = until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, conn.rd.read(&mut scratch)).await {
            Ok(Ok(n)) if n > 0 => dropped += n,
            _ => break,
        }
    }
}

fn build_request(
    head: &Head,
    rx: mpsc::Receiver<Result<Bytes, std::io::Error>>,
    peer: SocketAddr,
) -> Result<Request<Body>, &'static str> {
    let body = Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    let mut builder = Request::builder()
        .method(head.method.as_str())
        .uri(head.target.as_str())
        .version(if head.http10 {
            axum::http::Version::HTTP_10
        } else {
            axum::http::Version::HTTP_11
        });
    for (name, value) in &head.headers {
        // A header that does not parse is dropped, not the request: devices send odd ones.
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            builder = builder.header(name, value);
        }
    }
    let mut request = builder.body(body).map_err(|_| "invalid request target")?;
    request.extensions_mut().insert(ConnectInfo(peer));
    Ok(request)
}

/// Answers a request that cannot be served (counted as a bad request) and closes.
async fn refuse(conn: &mut Conn, shared: &Shared, status: StatusCode, body: &str) {
    shared.counters.bad_requests.fetch_add(1, Ordering::Relaxed);
    let _ = write_simple(conn, shared, status, body).await;
}

async fn write_simple(
    conn: &mut Conn,
    shared: &Shared,
    status: StatusCode,
    body: &str,
) -> std::io::Result<()> {
    let response = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from(body.to_owned()))
        .unwrap_or_default();
    write_response(conn, shared, response, false, false).await?;
    conn.wr.shutdown().await
}

async fn write_response(
    conn: &mut Conn,
    shared: &Shared,
    response: Response<Body>,
    keep: bool,
    head_only: bool,
) -> std::io::Result<()> {
    let (parts, body) = response.into_parts();
    // Answers are small (a command batch is at most tens of KB).
    let body = axum::body::to_bytes(body, 8 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let mut out = Vec::with_capacity(256 + body.len());
    out.extend_from_slice(
        format!(
            "HTTP/1.1 {} {}\r\n",
            parts.status.as_u16(),
            parts.status.canonical_reason().unwrap_or("")
        )
        .as_bytes(),
    );
    for (name, value) in &parts.headers {
        if matches!(
            *name,
            header::CONTENT_LENGTH | header::CONNECTION | header::DATE | header::TRANSFER_ENCODING
        ) {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let date = httpdate::fmt_http_date((shared.clock)().into());
    out.extend_from_slice(format!("Date: {date}\r\nContent-Length: {}\r\n", body.len()).as_bytes());
    out.extend_from_slice(if keep {
        b"Connection: keep-alive\r\n\r\n"
    } else {
        b"Connection: close\r\n\r\n"
    });
    if !head_only {
        out.extend_from_slice(&body);
    }
    tokio::time::timeout(shared.limits.body_idle_timeout, conn.wr.write_all(&out))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "answer not taken"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_starts_a_request_line() {
        for yes in [&b"GET /iclock"[..], b"POST /", b"GE", b"", b"OPTIONS *"] {
            assert!(
                looks_like_request(yes),
                "{:?}",
                String::from_utf8_lossy(yes)
            );
        }
        for no in [
            &b"1003\t2026-11-20 09:00:00\t0\t1\n"[..],
            b"   710011\t2020",
            b"USER PIN=1\tName=A",
            b"OPLOG 4\t0\t2019",
            b"get /",
            b"\x00\x01",
        ] {
            assert!(!looks_like_request(no), "{:?}", String::from_utf8_lossy(no));
        }
    }
}
