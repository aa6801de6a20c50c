//! Streams and consumers as code. Provisioning is idempotent: run it at every start.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};

use crate::LedgerError;
use crate::subjects::{Partitions, STREAM_PREFIX};

/// Stream metadata key recording the deployment's partition count.
pub const PARTITIONS_METADATA: &str = "ledgerclock.partitions";

/// How the event streams are set up. The defaults are what `deploy/` mirrors.
#[derive(Debug, Clone)]
pub struct LedgerConfig {
    /// Number of partition streams. Fixed for the life of a deployment: a tenant's
    /// partition is a hash of its id modulo this number.
    pub partitions: u16,
    /// Copies of each stream: 1 on a single node, 3 on the 3-node cluster.
    pub replicas: usize,
    /// How long JetStream remembers event ids to drop re-sent messages. Beyond it,
    /// projections' idempotent folding (punch ids) takes over.
    pub duplicate_window: Duration,
    /// How long an append keeps retrying unacknowledged messages (server restart, leader
    /// election) before reporting `Unavailable`.
    pub retry_for: Duration,
    /// Publishes in flight awaiting their acks.
    pub max_ack_inflight: usize,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self {
            partitions: 8,
            replicas: 1,
            duplicate_window: Duration::from_secs(10 * 60),
            retry_for: Duration::from_secs(30),
            max_ack_inflight: 4096,
        }
    }
}

impl LedgerConfig {
    pub fn partitions(&self) -> Partitions {
        Partitions::new(self.partitions)
    }

    /// The stream configuration of one partition. Events are facts: no discard, no
    /// deletes, no purges, no age limit.
    pub fn stream_config(&self, partition: u16) -> stream::Config {
        let p = self.partitions();
        stream::Config {
            name: p.stream_name(partition),
            description: Some(format!(
                "Ledgerclock events, partition {partition} of {}",
                self.partitions
            )),
            subjects: vec![p.stream_subject(partition)],
            retention: stream::RetentionPolicy::Limits,
            storage: stream::StorageType::File,
            num_replicas: self.replicas,
            duplicate_window: self.duplicate_window,
            discard: stream::DiscardPolicy::New,
            deny_delete: true,
            deny_purge: true,
            allow_direct: true,
            // A command's events are stored all or none (`Ledger::append_atomic`).
            allow_atomic_publish: true,
            max_message_size: 1024 * 1024,
            metadata: [(PARTITIONS_METADATA.to_owned(), self.partitions.to_string())].into(),
            ..Default::default()
        }
    }

    pub fn stream_configs(&self) -> Vec<stream::Config> {
        (0..self.partitions)
            .map(|k| self.stream_config(k))
            .collect()
    }
}

/// Creates or updates every partition stream. Refuses to run against a deployment set up
/// with another partition count, more or fewer, because tenants would silently change
/// streams and split their history.
pub async fn provision_streams(
    js: &jetstream::Context,
    config: &LedgerConfig,
) -> Result<Vec<stream::Info>, LedgerError> {
    use futures::TryStreamExt;

    let existing: Vec<stream::Info> = js
        .streams()
        .try_collect()
        .await
        .map_err(LedgerError::unavailable)?;
    for info in &existing {
        let name = &info.config.name;
        let Some(k) = name
            .strip_prefix(STREAM_PREFIX)
            .and_then(|k| k.parse::<u16>().ok())
        else {
            continue;
        };
        let recorded = info.config.metadata.get(PARTITIONS_METADATA);
        let mismatch =
            k >= config.partitions || recorded.is_some_and(|n| *n != config.partitions.to_string());
        if mismatch {
            return Err(LedgerError::Setup(format!(
                "stream {name} belongs to a deployment with {} partitions, but this one is \
                 configured with {}; a tenant's partition would change (use --partitions {})",
                recorded.map_or("more", String::as_str),
                config.partitions,
                recorded.map_or("N", String::as_str),
            )));
        }
    }

    let mut infos = Vec::with_capacity(config.stream_configs().len());
    for stream_config in config.stream_configs() {
        let info = js
            .create_or_update_stream(stream_config)
            .await
            .map_err(LedgerError::setup)?;
        infos.push(info);
    }
    Ok(infos)
}

/// A durable pull consumer for a worker that acknowledges what it has processed.
#[derive(Debug, Clone)]
pub struct DurableConsumer {
    pub name: String,
    /// Subject filters; see [`Partitions::tenant_filter`] and [`Partitions::kind_filter`].
    pub filters: Vec<String>,
    pub stream: String,
    pub ack_wait: Duration,
}

/// Creates or updates a durable consumer. Idempotent.
pub async fn provision_consumer(
    js: &jetstream::Context,
    spec: &DurableConsumer,
) -> Result<consumer::Info, LedgerError> {
    let config = consumer::pull::Config {
        durable_name: Some(spec.name.clone()),
        name: Some(spec.name.clone()),
        filter_subjects: spec.filters.clone(),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: spec.ack_wait,
        deliver_policy: consumer::DeliverPolicy::All,
        ..Default::default()
    };
    let consumer = js
        .create_consumer_on_stream(config, spec.stream.as_str())
        .await
        .map_err(LedgerError::setup)?;
    Ok(consumer.cached_info().clone())
}
