//! The ledger: Ledgerclock's only door to NATS JetStream.
//!
//! - [`subjects`]: the subject layout and partitioning (the only place they are spelled).
//! - [`provision`]: streams and consumers as code, idempotent.
//! - [`append`]: append one or many (pipelined acks, dedupe by event id, optimistic
//!   concurrency per aggregate, retry with the same ids).
//! - [`read`]: read a tenant up to now, or tail it live.
//! - [`nats_server`]: a supervised `nats-server` child for the embedded default and tests.
//! - [`baseline`]: raw JetStream publish figures that benchmarks compare against.
//!
//! Non-goals: deciding what to append (commands and the gateway do), folding events
//! (projections do), or any storage but JetStream.

pub mod append;
pub mod baseline;
mod direct;
mod error;
pub mod follow;
pub mod nats_server;
pub mod provision;
pub mod read;
pub mod subjects;

pub use append::{Appended, Expected};
pub use error::LedgerError;
pub use follow::{Follower, Tail};
pub use nats_server::{NatsServer, ServerOptions, Supervised};
pub use provision::{DurableConsumer, LedgerConfig, provision_consumer, provision_streams};
pub use read::{ReadFrom, Recorded};
pub use subjects::Partitions;

use async_nats::jetstream;

/// A connection to the ledger's streams.
#[derive(Debug, Clone)]
pub struct Ledger {
    client: async_nats::Client,
    js: jetstream::Context,
    config: LedgerConfig,
}

impl Ledger {
    /// Connects to `url` (one server or a comma-separated cluster seed list). Fails at
    /// once if none answers; once connected, the client reconnects forever and appends
    /// retry for `config.retry_for`.
    pub async fn connect(url: &str, config: LedgerConfig) -> Result<Self, LedgerError> {
        let client = async_nats::ConnectOptions::new()
            .name("ledgerclock")
            .max_reconnects(None)
            .connection_timeout(std::time::Duration::from_secs(5))
            .connect(url.split(',').map(str::trim).collect::<Vec<_>>().as_slice())
            .await
            .map_err(|e| LedgerError::Unavailable(format!("cannot connect to {url}: {e}")))?;
        Ok(Self::with_client(client, config))
    }

    pub fn with_client(client: async_nats::Client, config: LedgerConfig) -> Self {
        let js = jetstream::ContextBuilder::new()
            .max_ack_inflight(config.max_ack_inflight)
            // Waiting for a slot inside `send_publish` would deadlock two appenders that
            // each hold slots; `append` frees its own slots instead (see append.rs).
            .backpressure_on_inflight(false)
            .ack_timeout(std::time::Duration::from_secs(5))
            .build(client.clone());
        Self { client, js, config }
    }

    /// Creates or updates every stream this deployment needs.
    pub async fn provision(&self) -> Result<Vec<jetstream::stream::Info>, LedgerError> {
        provision_streams(&self.js, &self.config).await
    }

    pub fn partitions(&self) -> Partitions {
        self.config.partitions()
    }

    pub fn config(&self) -> &LedgerConfig {
        &self.config
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    /// Whether the connection to NATS is up now (no round trip): `Err` says its state.
    pub fn connected(&self) -> Result<(), String> {
        match self.client.connection_state() {
            async_nats::connection::State::Connected => Ok(()),
            state => Err(format!("NATS connection is {state}")),
        }
    }

    /// Whether JetStream answers (one round trip, at most `within`).
    pub async fn check(&self, within: std::time::Duration) -> Result<(), String> {
        self.connected()?;
        match tokio::time::timeout(within, self.js.query_account()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("JetStream does not answer: {e}")),
            Err(_) => Err(format!("JetStream did not answer within {within:?}")),
        }
    }

    /// Info of every partition stream, for status displays.
    pub async fn streams(&self) -> Result<Vec<jetstream::stream::Info>, LedgerError> {
        let mut infos = Vec::new();
        for k in 0..self.config.partitions {
            let mut stream = self
                .js
                .get_stream(self.partitions().stream_name(k))
                .await
                .map_err(LedgerError::unavailable)?;
            infos.push(
                stream
                    .info()
                    .await
                    .map_err(LedgerError::unavailable)?
                    .clone(),
            );
        }
        Ok(infos)
    }

    /// Waits until everything sent has reached the server, then closes the connection.
    pub async fn drain(self) -> Result<(), LedgerError> {
        self.client.drain().await.map_err(LedgerError::unavailable)
    }
}
