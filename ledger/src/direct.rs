//! Bounded reads without a consumer: JetStream's batched direct get
//! (`$JS.API.DIRECT.GET.<stream>` with `next_by_subj` and `batch`, nats-server 2.11+).
//!
//! Why not a consumer: every consumer is server state that outlives the read (an
//! ordered consumer lingers until its inactivity threshold), and a stream holds at most
//! 1,000 of them; a burst of device polls, phone punches and admin commands, each
//! reading a little, used them all up and every later read failed. A direct get is a
//! request and its replies on an inbox: when the read ends or is dropped, nothing is
//! left on the server.
//!
//! Replies are the stored messages (headers `Nats-Sequence`, `Nats-Subject`, ...), then
//! a status message `204 EOB` whose `Nats-Num-Pending` says how many matching messages
//! follow the batch; `404` when nothing matches at or after the requested sequence.
//! With `allow_direct`, any replica may answer; on a cluster a reply can trail the
//! leader by the replication lag (see ARCHITECTURE.md, "Reading").

use std::collections::VecDeque;
use std::time::Duration;

use async_nats::{Client, StatusCode, Subscriber};
use futures::StreamExt;
use serde::Serialize;

use crate::LedgerError;

/// Messages asked for per request.
const BATCH: usize = 1024;
/// Bytes asked for per request, so a batch of large events stays bounded.
const MAX_BYTES: usize = 8 * 1024 * 1024;
/// How long a batch may go without its next reply before the read is unavailable.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Serialize)]
struct Request<'a> {
    seq: u64,
    next_by_subj: &'a str,
    batch: usize,
    max_bytes: usize,
}

/// One stored message, as direct get returns it.
#[derive(Debug)]
pub(crate) struct Stored {
    pub sequence: u64,
    pub subject: String,
    pub payload: bytes::Bytes,
}

/// The messages of one subject filter from a sequence up to `last`, fetched a batch at a
/// time and handed out in stream order.
pub(crate) struct Cursor {
    client: Client,
    api: String,
    filter: String,
    next: u64,
    last: u64,
    done: bool,
    buffer: VecDeque<Stored>,
    inbox: Option<(String, Subscriber)>,
}

impl Cursor {
    pub fn new(client: Client, stream: &str, filter: String, from: u64, last: u64) -> Self {
        Self {
            client,
            api: format!("$JS.API.DIRECT.GET.{stream}"),
            filter,
            next: from.max(1),
            last,
            done: from.max(1) > last,
            buffer: VecDeque::new(),
            inbox: None,
        }
    }

    /// The sequence of the next message, fetching a batch if none is buffered; `None`
    /// when the filter has nothing more up to `last`.
    pub async fn peek(&mut self) -> Result<Option<u64>, LedgerError> {
        while self.buffer.is_empty() && !self.done {
            self.fetch().await?;
        }
        Ok(self.buffer.front().map(|m| m.sequence))
    }

    pub async fn next(&mut self) -> Result<Option<Stored>, LedgerError> {
        self.peek().await?;
        Ok(self.buffer.pop_front())
    }

    async fn fetch(&mut self) -> Result<(), LedgerError> {
        let (reply, inbox) = match &mut self.inbox {
            Some(inbox) => inbox,
            None => {
                let subject = self.client.new_inbox();
                let sub = self
                    .client
                    .subscribe(subject.clone())
                    .await
                    .map_err(LedgerError::unavailable)?;
                self.inbox.insert((subject, sub))
            }
        };
        let request = serde_json::to_vec(&Request {
            seq: self.next,
            next_by_subj: &self.filter,
            batch: BATCH,
            max_bytes: MAX_BYTES,
        })
        .map_err(LedgerError::unavailable)?;
        self.client
            .publish_with_reply(self.api.clone(), reply.clone(), request.into())
            .await
            .map_err(LedgerError::unavailable)?;
        let mut got = 0usize;
        loop {
            let message = tokio::time::timeout(REPLY_TIMEOUT, inbox.next())
                .await
                .map_err(|_| {
                    LedgerError::Unavailable(format!(
                        "no direct-get reply for {} within {REPLY_TIMEOUT:?}",
                        self.filter
                    ))
                })?
                .ok_or_else(|| LedgerError::Unavailable("connection closed mid-read".into()))?;
            match message.status {
                None | Some(StatusCode::OK) => {
                    let headers = message.headers.as_ref();
                    let header = |name: &str| {
                        headers
                            .and_then(|h| h.get(name))
                            .map(|v| v.as_str().to_owned())
                    };
                    let sequence = header("Nats-Sequence")
                        .and_then(|s| s.parse::<u64>().ok())
                        .ok_or_else(|| {
                            LedgerError::Unavailable("direct get reply without a sequence".into())
                        })?;
                    let subject = header("Nats-Subject").unwrap_or_default();
                    got += 1;
                    self.next = sequence + 1;
                    if sequence > self.last {
                        self.done = true;
                    } else {
                        self.buffer.push_back(Stored {
                            sequence,
                            subject,
                            payload: message.payload,
                        });
                    }
                }
                // End of batch: more may follow it, or not.
                Some(code) if code.as_u16() == 204 => {
                    let pending = message
                        .headers
                        .as_ref()
                        .and_then(|h| h.get("Nats-Num-Pending"))
                        .and_then(|v| v.as_str().parse::<u64>().ok())
                        .unwrap_or(0);
                    if pending == 0 || got == 0 || self.next > self.last {
                        self.done = true;
                    }
                    return Ok(());
                }
                Some(StatusCode::NOT_FOUND) => {
                    self.done = true;
                    return Ok(());
                }
                Some(StatusCode::NO_RESPONDERS) => {
                    return Err(LedgerError::Unavailable(format!(
                        "no server answers direct gets on {}",
                        self.api
                    )));
                }
                Some(code) => {
                    return Err(LedgerError::Unavailable(format!(
                        "direct get on {} answered {code}: {}",
                        self.api,
                        message.description.as_deref().unwrap_or("")
                    )));
                }
            }
        }
    }
}

/// Several cursors read as one: the union of their filters, in stream order.
pub(crate) struct Merged {
    cursors: Vec<Cursor>,
}

impl Merged {
    pub fn new(cursors: Vec<Cursor>) -> Self {
        Self { cursors }
    }

    pub async fn next(&mut self) -> Result<Option<Stored>, LedgerError> {
        let mut lowest: Option<(usize, u64)> = None;
        for (i, cursor) in self.cursors.iter_mut().enumerate() {
            if let Some(sequence) = cursor.peek().await?
                && lowest.is_none_or(|(_, s)| sequence < s)
            {
                lowest = Some((i, sequence));
            }
        }
        let Some((i, sequence)) = lowest else {
            return Ok(None);
        };
        let message = self.cursors[i].next().await?;
        // Overlapping filters (one subject matched by two) deliver it once.
        for cursor in &mut self.cursors {
            while cursor.peek().await? == Some(sequence) {
                cursor.next().await?;
            }
        }
        Ok(message)
    }
}
