//! Reading a tenant's events: up to now (`read`, by batched direct gets, leaving nothing
//! on the server) or forever (`tail`, through an ordered consumer, which the client
//! re-creates from the last sequence it saw if the connection or the consumer is lost).

use async_nats::jetstream::consumer::{self, DeliverPolicy};
use futures::{Stream, StreamExt};
use schemas::Envelope;
use schemas::ids::TenantId;

use crate::direct::{Cursor, Merged, Stored};
use crate::{Ledger, LedgerError};

/// An event as stored: where it is, and what it says.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub stream: String,
    /// The stream sequence: the checkpoint a projection keeps.
    pub sequence: u64,
    pub subject: String,
    pub envelope: Envelope,
}

/// Which of a tenant's events to read.
#[derive(Debug, Clone, Default)]
pub struct ReadFrom {
    /// First stream sequence to deliver (1 for the beginning).
    pub sequence: u64,
    /// Narrower filters than the whole tenant, e.g. [`crate::Partitions::kind_filter`];
    /// a subject matching any of them is read. Empty: every event of the tenant.
    pub filters: Vec<String>,
}

impl ReadFrom {
    pub fn start() -> Self {
        Self {
            sequence: 1,
            filters: Vec::new(),
        }
    }

    /// From the beginning, only the subjects `filter` matches.
    pub fn only(filter: String) -> Self {
        Self::any_of(vec![filter])
    }

    /// From the beginning, the subjects any of `filters` matches, in stream order.
    pub fn any_of(filters: Vec<String>) -> Self {
        Self {
            sequence: 1,
            filters,
        }
    }

    pub fn after(checkpoint: u64) -> Self {
        Self {
            sequence: checkpoint + 1,
            filters: Vec::new(),
        }
    }
}

type Events = std::pin::Pin<Box<dyn Stream<Item = Result<Recorded, LedgerError>> + Send>>;

impl Ledger {
    /// The tenant's events from `from` up to the last one stored when the call was
    /// made, then the stream ends, even while writers go on appending.
    ///
    /// Read by batched direct gets, not a consumer: a read, finished or dropped, leaves
    /// nothing behind on the server (see `direct.rs`).
    pub async fn read(&self, tenant: &TenantId, from: ReadFrom) -> Result<Events, LedgerError> {
        let p = self.partitions();
        let stream_name = p.stream_of(tenant);
        let stream = self
            .js
            .get_stream(&stream_name)
            .await
            .map_err(LedgerError::unavailable)?;
        // The stream's last sequence now: the read ends there.
        let last = stream.cached_info().state.last_sequence;
        let filters = if from.filters.is_empty() {
            vec![p.tenant_filter(tenant)]
        } else {
            from.filters.clone()
        };
        let cursors = filters
            .into_iter()
            .map(|filter| {
                Cursor::new(
                    self.client.clone(),
                    &stream_name,
                    filter,
                    from.sequence,
                    last,
                )
            })
            .collect();
        let events = futures::stream::try_unfold(Merged::new(cursors), move |mut merged| {
            let stream_name = stream_name.clone();
            async move {
                Ok(match merged.next().await? {
                    Some(stored) => Some((decode_stored(&stream_name, stored)?, merged)),
                    None => None,
                })
            }
        });
        Ok(Box::pin(events))
    }

    /// The tenant's events from `from` on, waiting for new ones forever.
    pub async fn tail(&self, tenant: &TenantId, from: ReadFrom) -> Result<Events, LedgerError> {
        let (consumer, stream_name) = self.ordered(tenant, &from).await?;
        let messages = consumer
            .messages()
            .await
            .map_err(LedgerError::unavailable)?;
        Ok(Box::pin(messages.map(move |m| decode(&stream_name, m))))
    }

    /// Every tenant of partition `partition` with at least one aggregate of `kind`, and
    /// those aggregates' ids (unescaped), from the stream's subject counts: one API
    /// request, no consumer, no event read. How a job that runs for every tenant (the
    /// daily device scopes) finds them.
    pub async fn aggregates_of_kind(
        &self,
        partition: u16,
        kind: schemas::AggregateKind,
    ) -> Result<Vec<(TenantId, String)>, LedgerError> {
        let p = self.partitions();
        let stream = self
            .js
            .get_stream_no_info(p.stream_name(partition))
            .await
            .map_err(LedgerError::unavailable)?;
        let mut subjects = stream
            .info_with_subjects(p.partition_kind_filter(partition, kind))
            .await
            .map_err(LedgerError::unavailable)?;
        let mut out = Vec::new();
        while let Some(entry) = subjects.next().await {
            let (subject, _count) = entry.map_err(LedgerError::unavailable)?;
            // lc.ev.p<k>.<tenant>.<kind>.<id>
            let mut tokens = subject.split('.').skip(3);
            let (Some(tenant), Some(_kind), Some(id)) =
                (tokens.next(), tokens.next(), tokens.next())
            else {
                continue;
            };
            let (Ok(tenant), Some(id)) =
                (TenantId::parse(tenant), crate::subjects::unescape_token(id))
            else {
                continue;
            };
            out.push((tenant, id));
        }
        out.sort();
        Ok(out)
    }

    /// The stream sequence of an aggregate's last event (0 if it has none): the value to
    /// pass as [`crate::Expected::LastSequence`].
    pub async fn last_sequence(
        &self,
        tenant: &TenantId,
        aggregate: &schemas::Aggregate,
    ) -> Result<u64, LedgerError> {
        use async_nats::jetstream::stream::LastRawMessageErrorKind;
        let p = self.partitions();
        let stream = self
            .js
            .get_stream_no_info(p.stream_of(tenant))
            .await
            .map_err(LedgerError::unavailable)?;
        match stream
            .get_last_raw_message_by_subject(&p.event_subject(tenant, aggregate))
            .await
        {
            Ok(message) => Ok(message.sequence),
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(0),
            Err(e) => Err(LedgerError::unavailable(e)),
        }
    }

    /// An aggregate's last event with its sequence, if it has any: the state a decision
    /// about a single-event aggregate (a device claim) needs, in one direct read.
    pub async fn last_event(
        &self,
        tenant: &TenantId,
        aggregate: &schemas::Aggregate,
    ) -> Result<Option<Recorded>, LedgerError> {
        use async_nats::jetstream::stream::LastRawMessageErrorKind;
        let p = self.partitions();
        let stream_name = p.stream_of(tenant);
        let stream = self
            .js
            .get_stream_no_info(&stream_name)
            .await
            .map_err(LedgerError::unavailable)?;
        let subject = p.event_subject(tenant, aggregate);
        match stream.get_last_raw_message_by_subject(&subject).await {
            Ok(message) => {
                let envelope = Envelope::from_msgpack(&message.payload).map_err(|source| {
                    LedgerError::Decode {
                        stream: stream_name.clone(),
                        sequence: message.sequence,
                        source,
                    }
                })?;
                Ok(Some(Recorded {
                    stream: stream_name,
                    sequence: message.sequence,
                    subject,
                    envelope,
                }))
            }
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(LedgerError::unavailable(e)),
        }
    }

    async fn ordered(
        &self,
        tenant: &TenantId,
        from: &ReadFrom,
    ) -> Result<(consumer::Consumer<consumer::pull::OrderedConfig>, String), LedgerError> {
        let p = self.partitions();
        let stream_name = p.stream_of(tenant);
        let stream = self
            .js
            .get_stream_no_info(&stream_name)
            .await
            .map_err(LedgerError::unavailable)?;
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subjects: if from.filters.is_empty() {
                    vec![p.tenant_filter(tenant)]
                } else {
                    from.filters.clone()
                },
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: from.sequence.max(1),
                },
                ..Default::default()
            })
            .await
            .map_err(LedgerError::unavailable)?;
        Ok((consumer, stream_name))
    }
}

fn decode_stored(stream: &str, stored: Stored) -> Result<Recorded, LedgerError> {
    let envelope =
        Envelope::from_msgpack(&stored.payload).map_err(|source| LedgerError::Decode {
            stream: stream.to_owned(),
            sequence: stored.sequence,
            source,
        })?;
    Ok(Recorded {
        stream: stream.to_owned(),
        sequence: stored.sequence,
        subject: stored.subject,
        envelope,
    })
}

fn decode(
    stream: &str,
    message: Result<async_nats::jetstream::Message, impl std::fmt::Display>,
) -> Result<Recorded, LedgerError> {
    let message = message.map_err(LedgerError::unavailable)?;
    let sequence = message
        .info()
        .map(|i| i.stream_sequence)
        .map_err(LedgerError::unavailable)?;
    let envelope =
        Envelope::from_msgpack(&message.payload).map_err(|source| LedgerError::Decode {
            stream: stream.to_owned(),
            sequence,
            source,
        })?;
    Ok(Recorded {
        stream: stream.to_owned(),
        sequence,
        subject: message.subject.to_string(),
        envelope,
    })
}
