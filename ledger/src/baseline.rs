//! The raw JetStream figures every benchmark divides by: plain async-nats publishes of
//! same-size messages to a scratch stream with the same storage as the event streams,
//! measured in the same run so the ratio holds on a noisy machine.

use std::time::{Duration, Instant};

use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, stream};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;

use crate::LedgerError;

const STREAM: &str = "LC_BENCH_RAW";
const SUBJECT: &str = "lc.bench.raw";

#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    pub messages: u64,
    pub bytes: u64,
    pub elapsed: Duration,
}

impl Throughput {
    pub fn per_second(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Publishes `count` messages of `size` bytes with up to `in_flight` acks outstanding
/// and waits for every ack. With `message_ids`, each carries a unique `Nats-Msg-Id`, so the
/// server's de-duplication cost is in the figure too. The scratch stream is removed
/// afterwards.
pub async fn raw_publish(
    js: &jetstream::Context,
    count: u64,
    size: usize,
    in_flight: usize,
    message_ids: bool,
) -> Result<Throughput, LedgerError> {
    let throughput = publish(js, count, size, in_flight, message_ids).await;
    let _ = js.delete_stream(STREAM).await;
    throughput
}

/// Publishes `count` messages of `size` bytes (untimed), then reads them all back in
/// order with an ordered pull consumer, as a replay from the stream would: the figure
/// is the read alone. The scratch stream is removed afterwards.
pub async fn raw_read(
    js: &jetstream::Context,
    count: u64,
    size: usize,
    in_flight: usize,
) -> Result<Throughput, LedgerError> {
    let result = async {
        publish(js, count, size, in_flight, false).await?;
        let stream = js.get_stream(STREAM).await.map_err(LedgerError::setup)?;
        let consumer = stream
            .create_consumer(jetstream::consumer::pull::OrderedConfig::default())
            .await
            .map_err(LedgerError::setup)?;
        let started = Instant::now();
        let mut messages = consumer
            .messages()
            .await
            .map_err(LedgerError::unavailable)?;
        let mut read = 0u64;
        while read < count {
            match messages.next().await {
                Some(Ok(_)) => read += 1,
                Some(Err(e)) => return Err(LedgerError::unavailable(e)),
                None => break,
            }
        }
        Ok(Throughput {
            messages: read,
            bytes: read * size as u64,
            elapsed: started.elapsed(),
        })
    }
    .await;
    let _ = js.delete_stream(STREAM).await;
    result
}

async fn publish(
    js: &jetstream::Context,
    count: u64,
    size: usize,
    in_flight: usize,
    message_ids: bool,
) -> Result<Throughput, LedgerError> {
    // A context of its own, whose acks may take long: with 4,096 in flight against a
    // server that syncs before every ack, the last ack waits for thousands of fsyncs,
    // which is the figure, not a failure.
    let js = &jetstream::ContextBuilder::new()
        .max_ack_inflight(in_flight.max(1))
        .backpressure_on_inflight(false)
        .ack_timeout(std::time::Duration::from_secs(120))
        .build(js.client());
    let _ = js.delete_stream(STREAM).await;
    js.create_stream(stream::Config {
        name: STREAM.into(),
        subjects: vec![SUBJECT.into()],
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .map_err(LedgerError::setup)?;

    let payload = Bytes::from(vec![b'x'; size]);
    let started = Instant::now();
    let mut pending = FuturesUnordered::new();
    for i in 0..count {
        if pending.len() >= in_flight {
            ack(pending.next().await)?;
        }
        let future = if message_ids {
            let message = PublishMessage::build()
                .payload(payload.clone())
                .message_id(format!("bench-{i:016}"));
            js.send_publish(SUBJECT, message).await
        } else {
            js.publish(SUBJECT, payload.clone()).await
        }
        .map_err(LedgerError::unavailable)?;
        pending.push(future.into_future());
    }
    while let Some(result) = pending.next().await {
        ack(Some(result))?;
    }
    let elapsed = started.elapsed();
    Ok(Throughput {
        messages: count,
        bytes: count * size as u64,
        elapsed,
    })
}

fn ack<T, E: std::fmt::Display>(result: Option<Result<T, E>>) -> Result<(), LedgerError> {
    match result {
        Some(Err(e)) => Err(LedgerError::unavailable(e)),
        _ => Ok(()),
    }
}
