//! The native transport's sink: an adopted socket written with `writev` from the runtime.
//!
//! Reading is the only way to see the peer's FIN or RST while no data is pending, so the
//! socket is also polled for reading; whatever a client sends after its request (pipelining)
//! has no meaning on an event stream and is read only to keep the receive buffer empty.

use std::future::Future;
use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, RawFd};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Duration;

use crate::batch::{Batch, Progress};
use crate::client::ClientShared;
use crate::close::CloseReason;
use crate::feed::MAX_FRAMES;
use crate::writer::{classify, Sink, Tally};

/// The terminating chunk: clients see a clean end of stream rather than a truncated one.
const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Reads per wakeup before yielding, so a peer that floods us cannot hold the worker.
const MAX_READS_PER_POLL: usize = 16;

pub(crate) struct SocketSink {
    stream: TcpStream,
    /// HTTP/1.1 chunked framing (the head said so); HTTP/1.0 streams are delimited by close.
    chunked: bool,
    /// What is left to send of a response head the embedder rendered but left to us (empty
    /// once sent, or when the embedder sent it). It is not the stream's: no tally counts it.
    head: Bytes,
}

impl SocketSink {
    pub fn new(stream: TcpStream, chunked: bool, head: Bytes) -> Self {
        SocketSink {
            stream,
            chunked,
            head,
        }
    }
}

/// One `writev` of the unsent `head` followed by a batch's `slices`; returns how much of the
/// batch went. A write that ends within the head reads as a full socket (`WouldBlock`), so the
/// batch waits for writability and comes back here, head first.
fn write_after_head(
    stream: &TcpStream,
    head: &mut Bytes,
    slices: &[IoSlice<'_>],
) -> io::Result<usize> {
    if head.is_empty() {
        return stream.try_write_vectored(slices);
    }
    let mut all = [IoSlice::new(&[]); MAX_FRAMES + 3];
    all[0] = IoSlice::new(head);
    let count = slices.len().min(MAX_FRAMES + 2);
    all[1..=count].copy_from_slice(&slices[..count]);
    let written = stream.try_write_vectored(&all[..=count])?;
    if written < head.len() {
        head.advance(written);
        return Err(io::ErrorKind::WouldBlock.into());
    }
    let past_head = written - head.len();
    *head = Bytes::new();
    if past_head == 0 {
        return Err(io::ErrorKind::WouldBlock.into());
    }
    Ok(past_head)
}

impl Sink for SocketSink {
    fn batch(&self) -> Batch {
        Batch::new(self.chunked)
    }

    fn write(&mut self, batch: &mut Batch, _tally: &Tally<'_>) -> io::Result<Progress> {
        let (stream, head) = (&self.stream, &mut self.head);
        batch.write(|slices| write_after_head(stream, head, slices))
    }

    fn poll_writable(
        &mut self,
        cx: &mut Context<'_>,
        _client: &ClientShared,
    ) -> Poll<io::Result<()>> {
        self.stream.poll_write_ready(cx)
    }

    fn poll_gone(&mut self, cx: &mut Context<'_>) -> Poll<CloseReason> {
        // On the stack, not in the task: every idle connection's task would carry it.
        let mut discard = [0u8; 64];
        for _ in 0..MAX_READS_PER_POLL {
            match self.stream.poll_read_ready(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(classify(&e)),
                Poll::Ready(Ok(())) => {}
            }
            match self.stream.try_read(&mut discard) {
                Ok(0) => return Poll::Ready(CloseReason::Client),
                // WouldBlock cleared the readiness: the next poll registers for more.
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(classify(&e)),
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    fn finish(&mut self, limit: Duration) -> impl Future<Output = io::Result<usize>> + Send {
        let last: &'static [u8] = if self.chunked { LAST_CHUNK } else { &[] };
        let stream = &mut self.stream;
        // A stream that ends before its first batch still gets its head: an end without one
        // would read as a broken response, not as an empty stream.
        let head = std::mem::take(&mut self.head);
        async move {
            let end = async {
                stream.write_all(&head).await?;
                stream.write_all(last).await?;
                stream.shutdown().await?;
                Ok(last.len())
            };
            tokio::time::timeout(limit, end)
                .await
                .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
        }
    }

    fn cut(&mut self) {
        // A peer that stopped reading would keep our unsent bytes in the kernel until its own
        // timeout; a reset frees them now.
        let _ = socket2::SockRef::from(&self.stream).set_linger(Some(Duration::ZERO));
    }

    fn socket_fd(&self) -> Option<RawFd> {
        Some(self.stream.as_raw_fd())
    }

    fn parks(&self) -> bool {
        true
    }

    fn poll_parked(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        // Readable is all `poll_gone` looks for: FIN, RST and stray bytes all make it so.
        self.stream.poll_read_ready(cx).map(|_| ())
    }
}
