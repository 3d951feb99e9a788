//! The writer task that owns one adopted connection.
//!
//! One task per client multiplexes four things with no JS involved: draining the queue into
//! coalesced writes, a heartbeat when the stream has been idle, a write deadline while the
//! socket accepts nothing, and reading, which is the only way to see the peer's FIN or RST
//! while no data is pending. A single timer serves both deadlines: they never apply together
//! (heartbeats only when nothing is pending, the write deadline only while something is).

use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::{sleep_until, Duration, Instant};

use crate::batch::{Batch, Progress};
use crate::client::ClientShared;
use crate::close::CloseReason;
use crate::config::OverflowPolicy;
use crate::events::HubEvents;
use crate::feed::Feed;
use crate::frame::HEARTBEAT;
use crate::peer_progress::PeerProgress;
use crate::sequence::Sequence;
use crate::stats::Stats;

/// The terminating chunk: clients see a clean end of stream rather than a truncated one.
const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

pub(crate) struct ConnectionSettings {
    pub heartbeat: Duration,
    pub write_timeout: Duration,
    pub overflow: OverflowPolicy,
    pub chunked: bool,
}

/// Runs until the connection ends, and says why.
pub(crate) async fn serve(
    mut stream: TcpStream,
    client: Arc<ClientShared>,
    settings: ConnectionSettings,
    stats: Arc<Stats>,
    sequence: Arc<Sequence>,
    events: Arc<dyn HubEvents>,
) -> CloseReason {
    let mut batch = Batch::new(settings.chunked);
    let mut feed = Feed::default();
    // Lives in every connection's future, so it is kept small; see the read arm below.
    let mut discard = [0u8; 64];
    let mut last_write = Instant::now();
    let mut blocked_since: Option<Instant> = None;
    let mut peer = PeerProgress::new(Some(stream.as_raw_fd()));
    let mut cut = false;
    let timer = sleep_until(last_write + settings.heartbeat);
    tokio::pin!(timer);

    let reason = loop {
        let draining = match client.close_requested() {
            None => false,
            Some(CloseReason::Server) => true,
            Some(other) => break other,
        };

        if batch.is_empty() {
            let horizon = client.horizon(sequence.committed());
            match feed.fill(&client, horizon, settings.overflow, batch.frames_mut()) {
                Ok(dropped) => stats.add_dropped(dropped),
                Err(_lagged) => break CloseReason::Slow,
            }
            batch.seal_frames();
        }
        if !batch.is_empty() {
            let written = batch.write(|s| stream.try_write_vectored(s));
            match written {
                Ok(Progress::Done { bytes }) => {
                    if feed.commit(&client) {
                        events.drained(client.id);
                    }
                    stats.add_written(bytes);
                    last_write = Instant::now();
                    blocked_since = None;
                    // Non-blocking writes never yield on their own: without this, a client whose
                    // queue is refilled as fast as its socket drains would keep the worker
                    // thread from every other connection.
                    tokio::task::consume_budget().await;
                    // More may have been queued meanwhile; take it before sleeping.
                    continue;
                }
                Ok(Progress::Blocked { bytes }) => {
                    stats.add_written(bytes);
                    if bytes > 0 || blocked_since.is_none() {
                        blocked_since = Some(Instant::now());
                        peer.mark();
                    }
                }
                Err(e) => break classify(&e),
            }
        }

        let pending = !batch.is_empty();
        if draining && !pending {
            if let Ok(bytes) =
                finish_gracefully(&mut stream, settings.chunked, settings.write_timeout).await
            {
                stats.add_written(bytes);
            }
            break CloseReason::Server;
        }
        let deadline = match blocked_since {
            Some(since) if pending => since + settings.write_timeout,
            _ => last_write + settings.heartbeat,
        };
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }

        tokio::select! {
            biased;
            _ = client.closing.notified() => {}
            ready = stream.writable(), if pending => {
                if let Err(e) = ready {
                    break classify(&e);
                }
            }
            _ = client.wake.notified() => {
                // Blocked on the socket, lagging out of a log's window is dealt with now rather
                // than whenever the socket takes bytes again.
                if pending {
                    match feed.check_lag(&client, settings.overflow) {
                        Ok(dropped) => stats.add_dropped(dropped),
                        Err(_lagged) => break CloseReason::Slow,
                    }
                }
            }
            ready = stream.readable() => {
                if let Err(e) = ready {
                    break classify(&e);
                }
                match stream.try_read(&mut discard) {
                    Ok(0) => break CloseReason::Client,
                    // Anything a client sends after its request (pipelining) has no meaning
                    // on an event stream; it is read only to keep the receive buffer empty.
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => break classify(&e),
                }
            }
            _ = &mut timer => {
                if pending {
                    if peer.advanced() {
                        // Still reading, only slowly: the deadline starts again.
                        blocked_since = Some(Instant::now());
                        continue;
                    }
                    break CloseReason::Timeout;
                }
                batch.set_single(Bytes::from_static(HEARTBEAT));
                stats.add_heartbeat();
            }
        }
    };

    let reason = match reason {
        // The server asked for this close: a drain that timed out (our deadline, or the
        // kernel's TCP_USER_TIMEOUT) still ends as the server's close, cut.
        CloseReason::Timeout if client.close_requested() == Some(CloseReason::Server) => {
            cut = true;
            CloseReason::Server
        }
        other => other,
    };
    feed.abandon(&client);
    batch.discard();
    if cut || matches!(reason, CloseReason::Slow | CloseReason::Timeout) {
        // A peer that stopped reading would keep our unsent bytes in the kernel until its own
        // timeout; a reset frees them now.
        let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    }
    reason
}

/// Ends the body and sends FIN; returns the bytes written (the terminating chunk, if any).
async fn finish_gracefully(
    stream: &mut TcpStream,
    chunked: bool,
    limit: Duration,
) -> io::Result<usize> {
    let end = async {
        let last = if chunked { LAST_CHUNK } else { &[] };
        stream.write_all(last).await?;
        stream.shutdown().await?;
        Ok(last.len())
    };
    tokio::time::timeout(limit, end)
        .await
        .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
}

/// RST and broken pipes are the peer's doing (`error`); the write deadline is ours (`timeout`).
fn classify(error: &io::Error) -> CloseReason {
    match error.kind() {
        io::ErrorKind::TimedOut => CloseReason::Timeout,
        _ => CloseReason::Error,
    }
}
