//! The writer task of a client served through Node (TLS, HTTP/2, no fd, or on request).
//!
//! The queue, its bounds and overflow policy, heartbeats and the write deadline are the same
//! as on a native connection; only the last step differs. Instead of `writev` into a socket, a
//! batch of frames is concatenated and passed to JS, which writes it to the response. One
//! batch is in flight at a time: JS acknowledges it when `res.write()` returned true, or at
//! `'drain'` when it returned false, so Node's buffering stays at one batch and a client that
//! stops reading backs up into the bounded queue exactly as on the native transport.

use std::os::fd::RawFd;
use std::sync::Arc;

use bytes::Bytes;
use tokio::time::{sleep_until, Duration, Instant};

use crate::batch::MAX_FRAMES;
use crate::client::ClientShared;
use crate::close::CloseReason;
use crate::events::HubEvents;
use crate::frame::HEARTBEAT;
use crate::peer_progress::PeerProgress;
use crate::stats::Stats;

/// Bytes passed to JS per batch: one `res.write()` each.
const MAX_BATCH_BYTES: usize = 256 * 1024;

pub(crate) struct NodeSettings {
    pub heartbeat: Duration,
    pub write_timeout: Duration,
    /// The TCP socket under the response (Node's; only looked at, never written or closed),
    /// so a batch that Node cannot flush yet is not taken for a stalled peer while the peer
    /// still reads. On HTTP/2 it is the session's socket, shared by its streams.
    pub socket_fd: Option<RawFd>,
}

/// A batch handed to JS and not yet acknowledged: what it holds of the queue's accounting.
struct InFlight {
    since: Instant,
    events: usize,
    bytes: usize,
}

pub(crate) async fn serve_node(
    client: Arc<ClientShared>,
    settings: NodeSettings,
    stats: Arc<Stats>,
    events: &dyn HubEvents,
) -> CloseReason {
    let mut last_write = Instant::now();
    let mut in_flight: Option<InFlight> = None;
    let mut peer = PeerProgress::new(settings.socket_fd);
    let timer = sleep_until(last_write + settings.heartbeat);
    tokio::pin!(timer);

    loop {
        let draining = match client.close_requested() {
            None => false,
            Some(CloseReason::Server) => true,
            Some(other) => {
                release(&client, in_flight.take());
                if matches!(other, CloseReason::Slow | CloseReason::Timeout) {
                    events.destroy(client.id);
                }
                return other;
            }
        };

        if in_flight.is_none() {
            if let Some(batch) = take_batch(&client) {
                let (bytes, count) = batch;
                let len = bytes.len();
                // Counted before the embedder sees the bytes, so its view never runs ahead.
                stats.add_written(len);
                events.write(client.id, bytes);
                last_write = Instant::now();
                in_flight = Some(InFlight {
                    since: last_write,
                    events: count,
                    bytes: len,
                });
                peer.mark();
                continue;
            }
            if draining {
                events.end(client.id);
                return CloseReason::Server;
            }
        }

        let deadline = match &in_flight {
            Some(batch) => batch.since + settings.write_timeout,
            None => last_write + settings.heartbeat,
        };
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }

        tokio::select! {
            biased;
            _ = client.closing.notified() => {}
            _ = client.writable.notified(), if in_flight.is_some() => {
                release(&client, in_flight.take());
            }
            _ = client.wake.notified(), if in_flight.is_none() => {}
            _ = &mut timer => {
                if let Some(batch) = in_flight.as_mut().filter(|_| peer.advanced()) {
                    // Node is still flushing to a peer that reads slowly: wait on.
                    batch.since = Instant::now();
                    continue;
                }
                if in_flight.is_some() {
                    release(&client, in_flight.take());
                    events.destroy(client.id);
                    // A drain that cannot finish still ends as the server's close.
                    return if draining { CloseReason::Server } else { CloseReason::Timeout };
                }
                stats.add_written(HEARTBEAT.len());
                stats.add_heartbeat();
                events.write(client.id, HEARTBEAT.to_vec());
                last_write = Instant::now();
                in_flight = Some(InFlight { since: last_write, events: 0, bytes: 0 });
                peer.mark();
            }
        }
    }
}

/// Concatenates up to one batch of queued frames. The frames stay counted in the queue until
/// JS acknowledges the batch.
fn take_batch(client: &ClientShared) -> Option<(Vec<u8>, usize)> {
    let first: Bytes = client.queue.pop()?;
    let mut out = Vec::with_capacity(first.len().max(4096));
    out.extend_from_slice(&first);
    let mut count = 1;
    while count < MAX_FRAMES && out.len() < MAX_BATCH_BYTES {
        match client.queue.pop() {
            Some(frame) => {
                out.extend_from_slice(&frame);
                count += 1;
            }
            None => break,
        }
    }
    Some((out, count))
}

fn release(client: &ClientShared, batch: Option<InFlight>) {
    if let Some(batch) = batch {
        client.queue.release(batch.events, batch.bytes);
    }
}
