//! Appending events: one, or many with pipelined acks, with optional optimistic concurrency.
//!
//! Every message carries `Nats-Msg-Id` = event id, so a retry after a lost ack (the
//! server stored it, the ack never arrived) is dropped by JetStream as a duplicate and
//! answered with the original sequence. That is what makes the retry loop below safe.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::context::{PublishAckFuture, PublishError, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use schemas::Envelope;

use crate::{Ledger, LedgerError};

pub const HEADER_KIND: &str = "Lc-Kind";
/// Checks `Nats-Expected-Last-Subject-Sequence` on this subject (wildcards allowed)
/// instead of the message's own (nats-server 2.11 and later).
const EXPECTED_LAST_SUBJECT_SEQUENCE_SUBJECT: &str = "Nats-Expected-Last-Subject-Sequence-Subject";

/// The most events one atomic append holds (JetStream's default batch limit).
pub const MAX_ATOMIC: usize = 1000;
const BATCH_ID: &str = "Nats-Batch-Id";
const BATCH_SEQUENCE: &str = "Nats-Batch-Sequence";
const BATCH_COMMIT: &str = "Nats-Batch-Commit";

/// JetStream's answer to a batch's commit.
#[derive(serde::Deserialize)]
struct BatchAck {
    #[serde(default)]
    stream: Option<String>,
    #[serde(default)]
    seq: Option<u64>,
    #[serde(default)]
    count: Option<u64>,
    #[serde(default)]
    error: Option<BatchError>,
}

#[derive(serde::Deserialize)]
struct BatchError {
    code: u16,
    err_code: u32,
    #[serde(default)]
    description: String,
}

/// What the aggregate's subject must look like for the append to go through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expected {
    /// Append whatever is there.
    #[default]
    Any,
    /// The aggregate has no events yet.
    Empty,
    /// The aggregate's last event is at this stream sequence.
    LastSequence(u64),
    /// The last event of any of the tenant's aggregates of this kind (every rule, every
    /// person) is at this stream sequence (0: there is none): a decision that spans
    /// aggregates, such as "one person follows one rule at a time", holds only if no
    /// aggregate of the kind changed since it was read (JetStream's
    /// `Nats-Expected-Last-Subject-Sequence-Subject`, a wildcard filter).
    LastOfKind(schemas::AggregateKind, u64),
}

/// Where an event landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub stream: String,
    pub sequence: u64,
    /// JetStream had this event id already: nothing new was stored.
    pub duplicate: bool,
}

struct Prepared {
    stream: String,
    subject: String,
    event_id: String,
    headers: HeaderMap,
    payload: Bytes,
    expected: Option<u64>,
    /// The subject (a filter) the expectation is checked on, when it is not `subject`.
    expected_on: Option<String>,
}

enum Outcome {
    Stored(Appended),
    Retry(String),
    Conflict,
    Fail(LedgerError),
}

impl Ledger {
    /// Appends one event and waits for JetStream's ack.
    pub async fn append(
        &self,
        envelope: &Envelope,
        expected: Expected,
    ) -> Result<Appended, LedgerError> {
        let mut out = self.append_expecting(&[(envelope, expected)]).await?;
        Ok(out.remove(0))
    }

    /// Appends many events, pipelining publishes (up to `max_ack_inflight` acks
    /// outstanding) instead of one round trip each. Returns when every event is stored,
    /// in input order. Unacknowledged events are retried with the same ids until
    /// `retry_for` runs out.
    pub async fn append_many(&self, envelopes: &[Envelope]) -> Result<Vec<Appended>, LedgerError> {
        let batch: Vec<_> = envelopes.iter().map(|e| (e, Expected::Any)).collect();
        self.append_expecting(&batch).await
    }

    /// Appends many events, each with its own expectation.
    pub async fn append_expecting(
        &self,
        batch: &[(&Envelope, Expected)],
    ) -> Result<Vec<Appended>, LedgerError> {
        let prepared = batch
            .iter()
            .map(|(envelope, expected)| self.prepare(envelope, *expected))
            .collect::<Result<Vec<_>, _>>()?;

        let mut results: Vec<Option<Appended>> = vec![None; prepared.len()];
        let deadline = tokio::time::Instant::now() + self.config.retry_for;
        let mut backoff = Duration::from_millis(50);
        // Retry from the first unacknowledged event on, in order, so a batch keeps its
        // order in the stream whenever the server keeps it.
        let mut start = 0;
        loop {
            let failure = self.publish_from(&prepared, start, &mut results).await?;
            let Some((index, reason)) = failure else {
                break;
            };
            if tokio::time::Instant::now() + backoff > deadline {
                return Err(LedgerError::Unavailable(format!(
                    "{} of {} events not acknowledged after {:?}: {reason}",
                    results.iter().filter(|r| r.is_none()).count(),
                    prepared.len(),
                    self.config.retry_for
                )));
            }
            tracing::warn!(
                tenant = %batch[index].0.tenant,
                subject = %prepared[index].subject,
                unacked_from = index,
                %reason,
                "append interrupted; retrying with the same ids"
            );
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
            start = index;
        }
        Ok(results
            .into_iter()
            .map(|r| r.expect("every event acked"))
            .collect())
    }

    /// Appends `envelopes` (one tenant's) all or none: a JetStream atomic batch
    /// (`Nats-Batch-Id`, `-Sequence`, `-Commit`), the first event carrying `expected`.
    /// The batch is stored whole or not at all, so a command's facts never land half
    /// way. A batch that repeats stored event ids is refused whole and reported as a
    /// `Conflict`, as a rival's change is: the caller reads again and finds its own
    /// events. Not retried here: after a lost answer the caller reads to learn whether
    /// it was stored.
    pub async fn append_atomic(
        &self,
        envelopes: &[Envelope],
        expected: Expected,
    ) -> Result<Vec<Appended>, LedgerError> {
        let batch: Vec<_> = envelopes
            .iter()
            .enumerate()
            .map(|(i, e)| (e, if i == 0 { expected } else { Expected::Any }))
            .collect();
        self.append_atomic_expecting(&batch).await
    }

    /// [`Ledger::append_atomic`] with an expectation on any event, not only the first:
    /// JetStream checks each against the stream as the batch's earlier events leave it,
    /// so one command can guard a kind (its first event) and, say, each device's
    /// command queue it adds to (that queue's first event in the batch). A mismatch
    /// anywhere stores nothing and is a `Conflict`.
    pub async fn append_atomic_expecting(
        &self,
        batch: &[(&Envelope, Expected)],
    ) -> Result<Vec<Appended>, LedgerError> {
        if batch.len() <= 1 {
            return self.append_expecting(batch).await;
        }
        if batch.len() > MAX_ATOMIC {
            return Err(LedgerError::Rejected(format!(
                "{} events in one atomic append; at most {MAX_ATOMIC}",
                batch.len()
            )));
        }
        let prepared = batch
            .iter()
            .map(|(e, expected)| self.prepare(e, *expected))
            .collect::<Result<Vec<_>, _>>()?;
        if prepared.iter().any(|p| p.stream != prepared[0].stream) {
            return Err(LedgerError::Rejected(
                "an atomic append is one tenant's events".into(),
            ));
        }
        let batch_id = prepared[0].event_id.clone();
        let last = prepared.len() - 1;
        let mut reply = None;
        for (i, p) in prepared.iter().enumerate() {
            let mut headers = p.headers.clone();
            headers.insert(BATCH_ID, batch_id.as_str());
            headers.insert(BATCH_SEQUENCE, (i + 1).to_string().as_str());
            let payload = p.payload.clone();
            if i < last {
                self.client
                    .publish_with_headers(p.subject.clone(), headers, payload)
                    .await
                    .map_err(LedgerError::unavailable)?;
            } else {
                headers.insert(BATCH_COMMIT, "1");
                let answer = tokio::time::timeout(
                    self.config.retry_for,
                    self.client
                        .request_with_headers(p.subject.clone(), headers, payload),
                )
                .await
                .map_err(|_| LedgerError::Unavailable("atomic append: no answer".into()))?
                .map_err(LedgerError::unavailable)?;
                reply = Some(answer);
            }
        }
        let reply = reply.expect("the last message is the commit");
        let answer: BatchAck = serde_json::from_slice(&reply.payload).map_err(|e| {
            LedgerError::Unavailable(format!("atomic append: unreadable answer: {e}"))
        })?;
        if let Some(error) = answer.error {
            return Err(match error.err_code {
                // Wrong last sequence; a batch holding an id already stored.
                10071 | 10201 => LedgerError::Conflict {
                    subject: prepared[0]
                        .expected_on
                        .clone()
                        .unwrap_or_else(|| prepared[0].subject.clone()),
                    expected: prepared[0].expected.unwrap_or_default(),
                },
                code if error.code == 503 => LedgerError::Unavailable(format!(
                    "atomic append ({code}): {}",
                    error.description
                )),
                code => LedgerError::Rejected(format!(
                    "refused by JetStream ({code}): {}",
                    error.description
                )),
            });
        }
        let (Some(stream), Some(seq), Some(count)) = (answer.stream, answer.seq, answer.count)
        else {
            return Err(LedgerError::Unavailable(
                "atomic append: an answer without a sequence".into(),
            ));
        };
        if count as usize != prepared.len() {
            return Err(LedgerError::Unavailable(format!(
                "atomic append: {count} of {} events acknowledged",
                prepared.len()
            )));
        }
        let first = seq + 1 - count;
        Ok((0..count)
            .map(|i| Appended {
                stream: stream.clone(),
                sequence: first + i,
                duplicate: false,
            })
            .collect())
    }

    fn prepare(&self, envelope: &Envelope, expected: Expected) -> Result<Prepared, LedgerError> {
        let subject = self
            .partitions()
            .event_subject(&envelope.tenant, &envelope.event.aggregate());
        let event_id = envelope.event_id.to_string();
        let payload = envelope
            .to_msgpack()
            .map_err(|e| LedgerError::Rejected(e.to_string()))?;
        let mut headers = HeaderMap::new();
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            envelope.event_id.to_string().as_str(),
        );
        headers.insert(HEADER_KIND, envelope.event.kind());
        let (expected, expected_on) = match expected {
            Expected::Any => (None, None),
            Expected::Empty => (Some(0), None),
            Expected::LastSequence(seq) => (Some(seq), None),
            Expected::LastOfKind(kind, seq) => (
                Some(seq),
                Some(self.partitions().kind_filter(&envelope.tenant, kind)),
            ),
        };
        if let Some(seq) = expected {
            headers.insert(
                async_nats::header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
                seq.to_string().as_str(),
            );
        }
        if let Some(filter) = &expected_on {
            headers.insert(EXPECTED_LAST_SUBJECT_SEQUENCE_SUBJECT, filter.as_str());
        }
        Ok(Prepared {
            stream: self.partitions().stream_of(&envelope.tenant),
            subject,
            event_id,
            headers,
            payload: Bytes::from(payload),
            expected,
            expected_on,
        })
    }

    /// Publishes `prepared[start..]` with a bounded window of acks in flight. Returns the
    /// first index that must be retried, if any.
    ///
    /// An event with an expectation is a barrier: it is sent only once everything before
    /// it is acknowledged, and nothing after it is sent before its own ack. So a conflict
    /// leaves every event before it stored and none after it.
    async fn publish_from(
        &self,
        prepared: &[Prepared],
        start: usize,
        results: &mut [Option<Appended>],
    ) -> Result<Option<(usize, String)>, LedgerError> {
        let window = self.config.max_ack_inflight.max(1);
        let mut in_flight = FuturesOrdered::new();
        let mut first_failure: Option<(usize, String)> = None;
        let mut next = start;

        loop {
            while first_failure.is_none() && next < prepared.len() && in_flight.len() < window {
                if results[next].is_some() {
                    next += 1;
                    continue;
                }
                let p = &prepared[next];
                let barrier = p.expected.is_some();
                if barrier && !in_flight.is_empty() {
                    break;
                }
                match self
                    .js
                    .send_publish(
                        p.subject.clone(),
                        PublishMessage::build()
                            .payload(p.payload.clone())
                            .headers(p.headers.clone()),
                    )
                    .await
                {
                    Ok(ack) => in_flight.push_back(wait_ack(next, ack)),
                    // The client's ack slots are shared by every clone of this Ledger;
                    // free ours by collecting an ack, or let another caller collect theirs.
                    Err(e) if e.kind() == PublishErrorKind::MaxAckPending => {
                        if in_flight.is_empty() {
                            tokio::task::yield_now().await;
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                        break;
                    }
                    Err(e) => match classify(e.kind(), &e) {
                        Outcome::Retry(reason) => first_failure = Some((next, reason)),
                        Outcome::Fail(err) => return Err(err),
                        Outcome::Stored(_) | Outcome::Conflict => {
                            unreachable!("a send error is never a store or a conflict")
                        }
                    },
                }
                next += 1;
                if barrier {
                    break;
                }
            }
            let Some((index, outcome)) = in_flight.next().await else {
                if first_failure.is_none() && next < prepared.len() {
                    continue;
                }
                break;
            };
            match outcome {
                Outcome::Stored(appended) => results[index] = Some(appended),
                Outcome::Retry(reason) => {
                    if first_failure.as_ref().is_none_or(|(i, _)| index < *i) {
                        first_failure = Some((index, reason));
                    }
                }
                Outcome::Conflict => {
                    // The server checks the expected sequence before de-duplication: if
                    // an earlier try of this very event was stored (its ack lost), this
                    // is that event, not a rival's.
                    let p = &prepared[index];
                    match self.stored_as_last(p).await? {
                        Some(appended) => results[index] = Some(appended),
                        None => {
                            return Err(LedgerError::Conflict {
                                subject: p.subject.clone(),
                                expected: p.expected.unwrap_or_default(),
                            });
                        }
                    }
                }
                Outcome::Fail(err) => return Err(err),
            }
        }
        Ok(first_failure)
    }

    /// Whether the last message on the subject the expectation was checked on is this
    /// event (same `Nats-Msg-Id`).
    async fn stored_as_last(&self, p: &Prepared) -> Result<Option<Appended>, LedgerError> {
        let stream_name = p.stream.clone();
        let stream = self
            .js
            .get_stream_no_info(&stream_name)
            .await
            .map_err(LedgerError::unavailable)?;
        let on = p.expected_on.as_deref().unwrap_or(&p.subject);
        let Ok(last) = stream.get_last_raw_message_by_subject(on).await else {
            return Ok(None);
        };
        let same = last
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .is_some_and(|id| id.as_str() == p.event_id);
        Ok(same.then_some(Appended {
            stream: stream_name,
            sequence: last.sequence,
            duplicate: true,
        }))
    }
}

async fn wait_ack(index: usize, ack: PublishAckFuture) -> (usize, Outcome) {
    let outcome = match ack.await {
        Ok(ack) => Outcome::Stored(Appended {
            stream: ack.stream,
            sequence: ack.sequence,
            duplicate: ack.duplicate,
        }),
        Err(e) => classify(e.kind(), &e),
    };
    (index, outcome)
}

/// What to do about a failed publish. Transport trouble and a JetStream that is briefly
/// unavailable (restart, leader election) are retried with the same ids; anything the
/// server refused for good is reported at once.
fn classify(kind: PublishErrorKind, error: &PublishError) -> Outcome {
    match kind {
        PublishErrorKind::WrongLastSequence => Outcome::Conflict,
        PublishErrorKind::MaxPayloadExceeded => {
            Outcome::Fail(LedgerError::Rejected(format!("event too large: {error}")))
        }
        PublishErrorKind::WrongLastMessageId => Outcome::Fail(LedgerError::Rejected(format!(
            "refused by the stream: {error}"
        ))),
        PublishErrorKind::TimedOut
        | PublishErrorKind::BrokenPipe
        | PublishErrorKind::StreamNotFound
        | PublishErrorKind::MaxAckPending => Outcome::Retry(error.to_string()),
        PublishErrorKind::Other => {
            let api = std::error::Error::source(error)
                .and_then(|s| s.downcast_ref::<async_nats::jetstream::Error>());
            match api {
                // 503: JetStream temporarily unavailable (no quorum, stepping down);
                // 429: too many requests in flight at the server. Both pass.
                Some(api) if matches!(api.code(), 503 | 429) => Outcome::Retry(error.to_string()),
                Some(api) => Outcome::Fail(LedgerError::Rejected(format!(
                    "refused by JetStream ({}): {api}",
                    api.error_code().0
                ))),
                None => Outcome::Retry(error.to_string()),
            }
        }
    }
}
