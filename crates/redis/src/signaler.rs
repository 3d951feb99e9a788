//! Publishes the queued signals (`signals`) on the namespace's control channel, in order: one
//! task with a connection of its own, pipelining `PUBLISH`es (Redis runs them in the order
//! sent, and pub/sub delivers them to each subscriber in that order).
//!
//! Why not the sender's connection: a signal must not wait behind the events buffered for
//! Redis (up to `maxBufferEvents`, sent 256 per round trip), nor behind an event Redis
//! refuses (which keeps the sender backing off until Redis applies it); a revocation is due
//! at once. And the sender's resend machinery (numbers, the script's idempotence) is for
//! stored events, not for a publish. The cost is one more connection per process, opened at
//! the first signal (a hub that sends none never opens it).
//!
//! A signal leaves the queue once Redis took it. A batch whose connection was lost before
//! Redis answered is sent again on the next one, whole: signals Redis had already published
//! are published twice then (at least once, in order, possibly repeated), which the embedder
//! tells apart by what it puts in its payloads.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use redis::Value;

use crate::backoff::Backoff;
use crate::bridge::Bridge;
use crate::sender::connection_config;
use crate::signals::Queued;

/// Signals per pipeline (their bytes are bounded by the queue's, 1 MiB).
const BATCH: usize = 256;

pub(crate) async fn run(bridge: Arc<Bridge>) {
    let signals = &bridge.signals;
    let mut backoff = Backoff::new(
        bridge.config.reconnect_min,
        bridge.config.reconnect_max,
        bridge.publisher.rotate_left(47),
    );
    let mut batch: Vec<Queued> = Vec::with_capacity(BATCH);
    while !bridge.hub.is_closed() {
        // Connected only once there is something to send.
        if signals.pending().0 == 0 {
            signals.ready.notified().await;
            continue;
        }
        let connected = bridge
            .client()
            .get_multiplexed_async_connection_with_config(&connection_config())
            .await;
        let Ok(mut connection) = connected else {
            tokio::time::sleep(backoff.delay()).await;
            continue;
        };
        // Whether Redis took anything on this connection: one lost after serving (Redis
        // restarted, an idle connection closed) is replaced at once; one that never served
        // is retried after the backoff, so a Redis that accepts and drops does not spin us.
        let mut served = false;
        loop {
            batch.clear();
            signals.front(BATCH, &mut batch);
            if batch.is_empty() {
                signals.ready.notified().await;
                continue;
            }
            let mut pipe = redis::pipe();
            pipe.ignore_errors();
            for signal in &batch {
                pipe.cmd("PUBLISH")
                    .arg(&bridge.keys.signals)
                    .arg(signal.payload.as_bytes());
            }
            let Ok(replies) = pipe.query_async::<Vec<Value>>(&mut connection).await else {
                break;
            };
            let taken = replies
                .iter()
                .take_while(|reply| !matches!(reply, Value::ServerError(_)))
                .count()
                .min(batch.len());
            if taken > 0 {
                signals.remove_through(batch[taken - 1].number);
                bridge
                    .counters
                    .signals_sent
                    .fetch_add(taken as u64, Ordering::Relaxed);
                served = true;
                backoff.reset();
            }
            if taken < batch.len() {
                // Redis answered the front signal with an error (an ACL without the channel),
                // or fewer replies than sent: it stays at the front, tried again after the
                // backoff on a new connection.
                served = false;
                break;
            }
        }
        if !served {
            tokio::time::sleep(backoff.delay()).await;
        }
    }
}
