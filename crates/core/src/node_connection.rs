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

use crate::client::ClientShared;
use crate::close::CloseReason;
use crate::config::OverflowPolicy;
use crate::events::HubEvents;
use crate::feed::Feed;
use crate::frame::HEARTBEAT;
use crate::peer_progress::PeerProgress;
use crate::sequence::Sequence;
use crate::stats::Stats;

pub(crate) struct NodeSettings {
    pub heartbeat: Duration,
    pub write_timeout: Duration,
    pub overflow: OverflowPolicy,
    /// The TCP socket under the response (Node's; only looked at, never written or closed),
    /// so a batch that Node cannot flush yet is not taken for a stalled peer while the peer
    /// still reads. On HTTP/2 it is the session's socket, shared by its streams.
    pub socket_fd: Option<RawFd>,
}

/// A batch handed to JS and not yet acknowledged.
struct InFlight {
    since: Instant,
}

pub(crate) async fn serve_node(
    client: Arc<ClientShared>,
    settings: NodeSettings,
    stats: &Stats,
    sequence: &Sequence,
    events: &dyn HubEvents,
) -> CloseReason {
    let mut feed = Feed::default();
    let mut frames: Vec<Bytes> = Vec::new();
    let reason = run(
        &client,
        &settings,
        stats,
        sequence,
        events,
        &mut feed,
        &mut frames,
    )
    .await;
    feed.abandon(&client);
    reason
}

async fn run(
    client: &ClientShared,
    settings: &NodeSettings,
    stats: &Stats,
    sequence: &Sequence,
    events: &dyn HubEvents,
    feed: &mut Feed,
    frames: &mut Vec<Bytes>,
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
                if matches!(other, CloseReason::Slow | CloseReason::Timeout) {
                    events.destroy(client.id);
                }
                return other;
            }
        };

        if in_flight.is_none() {
            frames.clear();
            let horizon = client.horizon(sequence.committed());
            match feed.fill(client, horizon, settings.overflow, frames) {
                Ok(dropped) => stats.add_dropped(dropped),
                Err(_lagged) => {
                    events.destroy(client.id);
                    return CloseReason::Slow;
                }
            }
            if !frames.is_empty() {
                let bytes = frames.concat();
                frames.clear();
                // Counted before the embedder sees the bytes, so its view never runs ahead.
                stats.add_written(bytes.len());
                events.write(client.id, bytes);
                last_write = Instant::now();
                in_flight = Some(InFlight { since: last_write });
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
                in_flight = None;
                if feed.commit(client) {
                    events.drained(client.id);
                }
            }
            _ = client.wake.notified() => {
                // While a batch waits for JS, lagging out of a log's window is dealt with now
                // rather than at the next acknowledgement.
                if in_flight.is_some() {
                    match feed.check_lag(client, settings.overflow) {
                        Ok(dropped) => stats.add_dropped(dropped),
                        Err(_lagged) => {
                            events.destroy(client.id);
                            return CloseReason::Slow;
                        }
                    }
                }
            }
            _ = &mut timer => {
                if let Some(batch) = in_flight.as_mut().filter(|_| peer.advanced()) {
                    // Node is still flushing to a peer that reads slowly: wait on.
                    batch.since = Instant::now();
                    continue;
                }
                if in_flight.is_some() {
                    events.destroy(client.id);
                    // A drain that cannot finish still ends as the server's close.
                    return if draining { CloseReason::Server } else { CloseReason::Timeout };
                }
                stats.add_written(HEARTBEAT.len());
                stats.add_heartbeat();
                events.write(client.id, HEARTBEAT.to_vec());
                last_write = Instant::now();
                in_flight = Some(InFlight { since: last_write });
                peer.mark();
            }
        }
    }
}
