//! Following a whole partition stream, for projection workers: bounded reads of the
//! partition (direct gets, as [`Ledger::read`]) and a durable pull consumer that hands
//! out batches in stream order from a checkpoint and is acknowledged after the batch's
//! views are committed.
//!
//! The consumer is the worker's own (`name`): created from the worker's checkpoint each
//! time it takes a partition over, since its store, not the server, knows what was
//! applied. It is durable so that a worker briefly disconnected resumes where the
//! server left off, and it has an inactivity threshold so that one of a worker that is
//! gone for good is removed by the server.

use std::time::Duration;

use async_nats::jetstream::consumer::{self, AckPolicy, DeliverPolicy, pull};
use futures::{FutureExt, StreamExt};
use schemas::Envelope;

use crate::direct::{Cursor, Merged};
use crate::read::Recorded;
use crate::{Ledger, LedgerError};

/// How long the server keeps a follower's consumer once nobody pulls from it.
const INACTIVE: Duration = Duration::from_secs(10 * 60);

/// A durable consumer over one partition stream.
pub struct Follower {
    stream: String,
    messages: pull::Stream,
    last: Option<async_nats::jetstream::Message>,
}

impl std::fmt::Debug for Follower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follower")
            .field("stream", &self.stream)
            .finish()
    }
}

impl Ledger {
    /// The last sequence of a partition's stream (0 when empty).
    pub async fn partition_last_sequence(&self, partition: u16) -> Result<u64, LedgerError> {
        let mut stream = self
            .js
            .get_stream(self.partitions().stream_name(partition))
            .await
            .map_err(LedgerError::unavailable)?;
        Ok(stream
            .info()
            .await
            .map_err(LedgerError::unavailable)?
            .state
            .last_sequence)
    }

    /// A partition's events matching any of `filters` (all when empty) from `from` up
    /// to `until` inclusive, in stream order, leaving nothing on the server.
    pub async fn read_partition(
        &self,
        partition: u16,
        filters: Vec<String>,
        from: u64,
        until: u64,
    ) -> Result<
        std::pin::Pin<Box<dyn futures::Stream<Item = Result<Recorded, LedgerError>> + Send>>,
        LedgerError,
    > {
        let p = self.partitions();
        let stream_name = p.stream_name(partition);
        let filters = if filters.is_empty() {
            vec![p.stream_subject(partition)]
        } else {
            filters
        };
        let cursors = filters
            .into_iter()
            .map(|f| Cursor::new(self.client.clone(), &stream_name, f, from, until))
            .collect();
        let events = futures::stream::try_unfold(Merged::new(cursors), move |mut merged| {
            let stream_name = stream_name.clone();
            async move {
                Ok(match merged.next().await? {
                    Some(stored) => {
                        let envelope =
                            Envelope::from_msgpack(&stored.payload).map_err(|source| {
                                LedgerError::Decode {
                                    stream: stream_name.clone(),
                                    sequence: stored.sequence,
                                    source,
                                }
                            })?;
                        Some((
                            Recorded {
                                stream: stream_name,
                                sequence: stored.sequence,
                                subject: stored.subject,
                                envelope,
                            },
                            merged,
                        ))
                    }
                    None => None,
                })
            }
        });
        Ok(Box::pin(events))
    }

    /// (Re)creates the durable consumer `name` over a partition, delivering from
    /// `after + 1`.
    pub async fn follow(
        &self,
        partition: u16,
        name: &str,
        after: u64,
    ) -> Result<Follower, LedgerError> {
        let stream_name = self.partitions().stream_name(partition);
        let stream = self
            .js
            .get_stream_no_info(&stream_name)
            .await
            .map_err(LedgerError::unavailable)?;
        // Its position is the store's checkpoint, not what the server remembers.
        let _ = stream.delete_consumer(name).await;
        let consumer = stream
            .create_consumer(pull::Config {
                durable_name: Some(name.to_owned()),
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: after + 1,
                },
                ack_policy: AckPolicy::All,
                ack_wait: Duration::from_secs(60),
                max_ack_pending: -1,
                inactive_threshold: INACTIVE,
                ..Default::default()
            })
            .await
            .map_err(LedgerError::unavailable)?;
        let messages = consumer
            .stream()
            .max_messages_per_batch(1024)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
            .map_err(LedgerError::unavailable)?;
        Ok(Follower {
            stream: stream_name,
            messages,
            last: None,
        })
    }

    /// Removes a follower's consumer (a worker giving a partition up).
    pub async fn unfollow(&self, partition: u16, name: &str) -> Result<(), LedgerError> {
        let stream = self
            .js
            .get_stream_no_info(self.partitions().stream_name(partition))
            .await
            .map_err(LedgerError::unavailable)?;
        let _ = stream.delete_consumer(name).await;
        Ok(())
    }
}

impl Follower {
    /// The next events in stream order: waits up to `wait` for the first, then takes
    /// what has already arrived, up to `max`. Empty when nothing came.
    pub async fn next_batch(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Recorded>, LedgerError> {
        let mut out = Vec::new();
        let first = match tokio::time::timeout(wait, self.messages.next()).await {
            Err(_) | Ok(None) => return Ok(out),
            Ok(Some(m)) => m,
        };
        self.take(first, &mut out)?;
        while out.len() < max {
            match self.messages.next().now_or_never() {
                Some(Some(m)) => self.take(m, &mut out)?,
                _ => break,
            }
        }
        Ok(out)
    }

    fn take(
        &mut self,
        message: Result<async_nats::jetstream::Message, consumer::pull::MessagesError>,
        out: &mut Vec<Recorded>,
    ) -> Result<(), LedgerError> {
        let message = message.map_err(LedgerError::unavailable)?;
        let sequence = message
            .info()
            .map(|i| i.stream_sequence)
            .map_err(LedgerError::unavailable)?;
        let envelope =
            Envelope::from_msgpack(&message.payload).map_err(|source| LedgerError::Decode {
                stream: self.stream.clone(),
                sequence,
                source,
            })?;
        out.push(Recorded {
            stream: self.stream.clone(),
            sequence,
            subject: message.subject.to_string(),
            envelope,
        });
        self.last = Some(message);
        Ok(())
    }

    /// Acknowledges everything handed out so far (the batch is committed).
    pub async fn ack(&mut self) -> Result<(), LedgerError> {
        if let Some(m) = self.last.take() {
            m.ack()
                .await
                .map_err(|e| LedgerError::Unavailable(e.to_string()))?;
        }
        Ok(())
    }
}

/// An ordered consumer over some subjects of a partition: the one live read a
/// gateway keeps to serve devices and phones from memory. Ephemeral (it is recreated
/// from the last sequence its reader applied) and removed by the server once its reader
/// is gone.
pub struct Tail {
    stream: String,
    messages: consumer::pull::Ordered,
    /// How many matching messages the stream held beyond the start when the tail began.
    pub pending_at_start: u64,
}

impl std::fmt::Debug for Tail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tail")
            .field("stream", &self.stream)
            .finish()
    }
}

impl Ledger {
    /// Tails the events of a partition matching `filters`, from `after + 1`.
    pub async fn tail_partition(
        &self,
        partition: u16,
        filters: Vec<String>,
        after: u64,
    ) -> Result<Tail, LedgerError> {
        let stream_name = self.partitions().stream_name(partition);
        let stream = self
            .js
            .get_stream_no_info(&stream_name)
            .await
            .map_err(LedgerError::unavailable)?;
        let mut consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subjects: filters,
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: after + 1,
                },
                ..Default::default()
            })
            .await
            .map_err(LedgerError::unavailable)?;
        let pending_at_start = consumer
            .info()
            .await
            .map_err(LedgerError::unavailable)?
            .num_pending;
        let messages = consumer
            .messages()
            .await
            .map_err(LedgerError::unavailable)?;
        Ok(Tail {
            stream: stream_name,
            messages,
            pending_at_start,
        })
    }

    /// The sequence of the last event of a partition matching `filter` (wildcards
    /// allowed), 0 when there is none: one direct read, for a reader to know how far
    /// it must have applied to be current.
    pub async fn last_sequence_matching(
        &self,
        partition: u16,
        filter: &str,
    ) -> Result<u64, LedgerError> {
        use async_nats::jetstream::stream::LastRawMessageErrorKind;
        let stream = self
            .js
            .get_stream_no_info(self.partitions().stream_name(partition))
            .await
            .map_err(LedgerError::unavailable)?;
        match stream.get_last_raw_message_by_subject(filter).await {
            Ok(message) => Ok(message.sequence),
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(0),
            Err(e) => Err(LedgerError::unavailable(e)),
        }
    }
}

impl Tail {
    /// The next event and how many matching messages follow it in the stream; `None`
    /// when the consumer ended.
    pub async fn next(&mut self) -> Option<Result<(Recorded, u64), LedgerError>> {
        let message = match self.messages.next().await? {
            Ok(message) => message,
            Err(e) => return Some(Err(LedgerError::unavailable(e))),
        };
        let (sequence, pending) = match message.info() {
            Ok(info) => (info.stream_sequence, info.pending),
            Err(e) => return Some(Err(LedgerError::unavailable(e))),
        };
        let envelope = match Envelope::from_msgpack(&message.payload) {
            Ok(envelope) => envelope,
            Err(source) => {
                return Some(Err(LedgerError::Decode {
                    stream: self.stream.clone(),
                    sequence,
                    source,
                }));
            }
        };
        Some(Ok((
            Recorded {
                stream: self.stream.clone(),
                sequence,
                subject: message.subject.to_string(),
                envelope,
            },
            pending,
        )))
    }
}
