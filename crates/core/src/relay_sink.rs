//! The sink of a client whose bytes the embedder writes (the relay): the Node transport (TLS,
//! HTTP/2, no fd, or on request), where JS writes a response, and the Fetch transport, where
//! JS feeds a `Response` body. A batch is concatenated and passed to JS; one is in flight at a
//! time, acknowledged once the response or body takes more (at once when `res.write()`
//! returned true or the body's queue has room, else at `'drain'` or the reader's next pull),
//! so buffering outside the hub stays at one batch and a client that stops reading backs up
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

pub(crate) struct RelaySink {
    id: u64,
    events: Arc<dyn HubEvents>,
    /// The TCP socket under the response (Node's; only looked at, never written or closed),
    /// so a batch that Node cannot flush yet is not taken for a stalled peer while the peer
    /// still reads. On HTTP/2 it is the session's socket, shared by its streams.
    socket_fd: Option<SocketFd>,
    batch: InFlight,
}

/// Where the batch is on its way through JS.
#[derive(Clone, Copy, PartialEq, Eq)]
enum InFlight {
    None,
    /// Handed to JS, not acknowledged yet.
    Handed,
    /// JS wrote it and the response accepts more.
    Acknowledged,
}

impl RelaySink {
    pub fn new(id: u64, events: Arc<dyn HubEvents>, socket_fd: Option<SocketFd>) -> Self {
        RelaySink {
            id,
            events,
            socket_fd,
            batch: InFlight::None,
        }
    }
}

impl Sink for RelaySink {
    fn batch(&self) -> Batch {
        // Node frames the response body itself.
        Batch::new(false)
    }

    fn write(&mut self, batch: &mut Batch, tally: &Tally<'_>) -> io::Result<Progress> {
        match self.batch {
            InFlight::None => {
                // A batch of one frame (a broadcast to a client that keeps up) is the log's own
                // frame, shared: the embedder can tell identical writes apart by address.
                let bytes = match batch.frames() {
                    [one] => one.clone(),
                    frames => Bytes::from(frames.concat()),
                };
                // Counted here, before JS sees the bytes, so its view of the counters never
                // runs ahead; hence `Blocked` reports none.
                tally.written(bytes.len(), 0);
                self.events.write(self.id, bytes);
                self.batch = InFlight::Handed;
                Ok(Progress::Blocked { bytes: 0 })
            }
            InFlight::Handed => Ok(Progress::Blocked { bytes: 0 }),
            InFlight::Acknowledged => {
                self.batch = InFlight::None;
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
        // The writer registered its waker before asking; `relay_writable` sets the bit.
        if self.batch == InFlight::Handed && client.wakeup.take(WRITABLE) {
            self.batch = InFlight::Acknowledged;
            return Poll::Ready(Ok(()));
        }
        Poll::Pending
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
