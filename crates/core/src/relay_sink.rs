//! The sink of a client whose bytes the embedder writes (the relay): the Node transport (TLS,
//! HTTP/2, no fd, or on request), where JS writes a response, and the Fetch transport, where
//! JS feeds a `Response` body. A batch is concatenated and passed to JS.
//!
//! A Node response takes one batch at a time: pending (counted as queued, its write deadline
//! running) until JS acknowledges it, at once when `res.write()` accepted it, else at
//! `'drain'`. A Fetch body takes batches on credit: up to `RELAY_CREDIT_BYTES` handed and not
//! acknowledged, acknowledged in bulk once half of it is used (a body that keeps up costs one
//! acknowledgement per 8 KiB, not one per batch and a second wake of its writer), and refused
//! at once when its queue is full; then nothing more is handed until the runtime reads, and
//! the write deadline runs as for a full socket. Either way buffering outside the hub stays
//! within one batch past what the response holds, and a client that stops reading backs up
//! into the hub exactly as on the native transport.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::time::Duration;

use crate::batch::{Batch, Progress};
use crate::client::ClientShared;
use crate::close::CloseReason;
use crate::events::HubEvents;
use crate::socket::SocketFd;
use crate::wakeup::WRITABLE;
use crate::writer::{Sink, Tally};

/// Bytes a Fetch body may have been handed and not have had acknowledged: what its queue
/// holds before it pushes back (Node's default `writableHighWaterMark`, fetch-transport.js).
pub const RELAY_CREDIT_BYTES: u64 = 16 * 1024;

pub(crate) struct RelaySink {
    id: u64,
    events: Arc<dyn HubEvents>,
    /// The TCP socket under the response (Node's; only looked at, never written or closed),
    /// so a batch that Node cannot flush yet is not taken for a stalled peer while the peer
    /// still reads. On HTTP/2 it is the session's socket, shared by its streams.
    socket_fd: Option<SocketFd>,
    /// Bytes handed to JS since the start.
    handed: u64,
    flow: Flow,
}

/// How batches go to JS.
enum Flow {
    /// A Node response: one batch at a time, pending (counted as queued, its deadline
    /// running) until JS acknowledges it.
    OneBatch(InFlight),
    /// A Fetch body: batches go while at most this many bytes are unacknowledged and the
    /// body did not refuse the last one.
    Credit(u64),
}

/// Where a Node response's batch is on its way through JS.
#[derive(Clone, Copy, PartialEq, Eq)]
enum InFlight {
    None,
    /// Handed to JS, not acknowledged yet.
    Handed,
    /// JS wrote it and the response accepts more.
    Acknowledged,
}

impl RelaySink {
    /// `credit`: None for one batch at a time, else the bytes that may be unacknowledged.
    pub fn new(
        id: u64,
        events: Arc<dyn HubEvents>,
        socket_fd: Option<SocketFd>,
        credit: Option<u64>,
    ) -> Self {
        RelaySink {
            id,
            events,
            socket_fd,
            handed: 0,
            flow: match credit {
                None => Flow::OneBatch(InFlight::None),
                Some(bytes) => Flow::Credit(bytes),
            },
        }
    }

    /// Whether a Fetch body takes another batch: it did not refuse the last one, and what it
    /// has not acknowledged is within `credit`.
    fn within(&self, credit: u64, client: &ClientShared) -> bool {
        let (acknowledged, refused) = client.relay_gate();
        !refused && self.handed.saturating_sub(acknowledged) < credit
    }

    /// Concatenates the batch and hands it to JS.
    fn hand(&mut self, batch: &mut Batch, tally: &Tally<'_>) {
        // A batch of one frame (a broadcast to a client that keeps up) is the log's own
        // frame, shared: the embedder can tell identical writes apart by address.
        let bytes = match batch.frames() {
            [one] => one.clone(),
            frames => Bytes::from(frames.concat()),
        };
        self.handed += bytes.len() as u64;
        // Counted here, before JS sees the bytes, so its view of the counters never runs
        // ahead; hence the `Progress` that follows reports none.
        tally.written(bytes.len(), 0);
        self.events.write(self.id, bytes);
    }
}

impl Sink for RelaySink {
    fn batch(&self) -> Batch {
        // Node frames the response body itself.
        Batch::new(false)
    }

    fn write(&mut self, batch: &mut Batch, tally: &Tally<'_>) -> io::Result<Progress> {
        match self.flow {
            Flow::OneBatch(InFlight::None) => {
                self.hand(batch, tally);
                self.flow = Flow::OneBatch(InFlight::Handed);
                Ok(Progress::Blocked { bytes: 0 })
            }
            Flow::OneBatch(InFlight::Handed) => Ok(Progress::Blocked { bytes: 0 }),
            Flow::OneBatch(InFlight::Acknowledged) => {
                self.flow = Flow::OneBatch(InFlight::None);
                batch.discard();
                Ok(Progress::Done { bytes: 0 })
            }
            Flow::Credit(credit) => {
                if !self.within(credit, tally.client()) {
                    return Ok(Progress::Blocked { bytes: 0 });
                }
                self.hand(batch, tally);
                batch.discard();
                Ok(Progress::Done { bytes: 0 })
            }
        }
    }

    fn poll_writable(
        &mut self,
        _cx: &mut Context<'_>,
        client: &ClientShared,
    ) -> Poll<io::Result<()>> {
        // The writer registered its waker before asking; an acknowledgement sets the bit.
        let woken = client.wakeup.take(WRITABLE);
        match self.flow {
            Flow::OneBatch(InFlight::Handed) if woken && client.relay_gate().0 >= self.handed => {
                self.flow = Flow::OneBatch(InFlight::Acknowledged);
                Poll::Ready(Ok(()))
            }
            Flow::Credit(credit) if self.within(credit, client) => Poll::Ready(Ok(())),
            _ => Poll::Pending,
        }
    }

    fn poll_gone(&mut self, _cx: &mut Context<'_>) -> Poll<CloseReason> {
        // JS sees the response close and reports it as a close request.
        Poll::Pending
    }

    fn finish(&mut self, _limit: Duration) -> impl Future<Output = io::Result<usize>> + Send {
        self.events.end(self.id);
        std::future::ready(Ok(0))
    }

    fn cut(&mut self) {
        self.events.destroy(self.id);
    }

    fn socket_fd(&self) -> Option<SocketFd> {
        self.socket_fd
    }
}
