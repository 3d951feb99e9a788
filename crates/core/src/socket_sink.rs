//! The native transport's sink: an adopted socket written with `writev` from the runtime.
//!
//! Reading is the only way to see the peer's FIN or RST while no data is pending, so the
//! socket is also polled for reading; whatever a client sends after its request (pipelining)
//! has no meaning on an event stream and is read only to keep the receive buffer empty.
//!
//! The socket is registered with the runtime's I/O driver for reading only, and for writing
//! too only once a write found it full. A fresh socket is writable: registered for writing,
//! it woke the driver's thread at once, which on a small machine took the core from the thread
//! adopting it, once per connection of a reconnect wave (some 9,000 switches in a wave of 10,000,
//! and the adoption's system call returned to JS only after that thread had run). Until a
//! write blocks, nothing needs to hear of writability: writes go straight to the socket.

use std::future::Future;
use std::io::{self, IoSlice, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
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
    /// None once registering it again failed (`watch_writes`): the socket is closed, and
    /// every use of it fails.
    stream: Option<AsyncFd<TcpStream>>,
    /// Registered for writability too: a write found the socket full once.
    watching_writes: bool,
    /// HTTP/1.1 chunked framing (the head said so); HTTP/1.0 streams are delimited by close.
    chunked: bool,
    /// What is left to send of a response head the embedder rendered but left to us (empty
    /// once sent, or when the embedder sent it). It is not the stream's: no tally counts it.
    head: Bytes,
}

impl SocketSink {
    /// Registers `stream` (non-blocking) for reading with the current runtime's I/O driver.
    pub fn new(stream: TcpStream, chunked: bool, head: Bytes) -> io::Result<Self> {
        Ok(SocketSink {
            stream: Some(register(stream, Interest::READABLE).map_err(|(_, e)| e)?),
            watching_writes: false,
            chunked,
            head,
        })
    }

    fn fd(&self) -> io::Result<&AsyncFd<TcpStream>> {
        self.stream.as_ref().ok_or_else(unregistered)
    }

    /// Registers the socket for writability as well (once): deregistered and registered again,
    /// which reports whatever it is ready for now, so no FIN that came meanwhile is missed.
    fn watch_writes(&mut self) -> io::Result<()> {
        if self.watching_writes {
            return Ok(());
        }
        let stream = self.stream.take().ok_or_else(unregistered)?.into_inner();
        match register(stream, Interest::READABLE | Interest::WRITABLE) {
            Ok(registered) => {
                self.stream = Some(registered);
                self.watching_writes = true;
                Ok(())
            }
            // The stream goes (closed): the writer ends on the error.
            Err((_stream, e)) => Err(e),
        }
    }
}

fn unregistered() -> io::Error {
    io::Error::other("the socket could not be registered with the runtime again")
}

/// Registers `stream` with the current runtime's I/O driver for `interest`; on failure, the
/// stream back with the error.
fn register(
    stream: TcpStream,
    interest: Interest,
) -> Result<AsyncFd<TcpStream>, (TcpStream, io::Error)> {
    // SAFETY: a `TcpStream` owns its descriptor: it stays open, and the same, for as long as
    // the `AsyncFd` holds the stream (nothing here swaps it through `get_mut`).
    unsafe { AsyncFd::register_with_interest(stream, interest) }.map_err(|e| e.into_parts())
}

/// One `writev`: straight to the socket while nothing watches its writability (it has not
/// been full yet), else through the driver's readiness, which a full socket clears.
fn write_vectored(
    stream: &AsyncFd<TcpStream>,
    watching_writes: bool,
    slices: &[IoSlice<'_>],
) -> io::Result<usize> {
    if watching_writes {
        stream.try_io(Interest::WRITABLE, |socket| {
            (&*socket).write_vectored(slices)
        })
    } else {
        stream.get_ref().write_vectored(slices)
    }
}

/// Writes all of `bytes`, waiting for writability (registered for it first) as needed.
async fn write_all(sink: &mut SocketSink, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        let written = match write_vectored(sink.fd()?, sink.watching_writes, &[IoSlice::new(bytes)])
        {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                sink.watch_writes()?;
                let _ready = sink.fd()?.writable().await?;
                continue;
            }
            result => result?,
        };
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        bytes = &bytes[written..];
    }
    Ok(())
}

/// One `writev` of the unsent `head` followed by a batch's `slices`; returns how much of the
/// batch went. A write that ends within the head reads as a full socket (`WouldBlock`), so the
/// batch waits for writability and comes back here, head first.
fn write_after_head(
    stream: &AsyncFd<TcpStream>,
    watching_writes: bool,
    head: &mut Bytes,
    slices: &[IoSlice<'_>],
) -> io::Result<usize> {
    if head.is_empty() {
        return write_vectored(stream, watching_writes, slices);
    }
    let mut all = [IoSlice::new(&[]); MAX_FRAMES + 3];
    all[0] = IoSlice::new(head);
    let count = slices.len().min(MAX_FRAMES + 2);
    all[1..=count].copy_from_slice(&slices[..count]);
    let written = write_vectored(stream, watching_writes, &all[..=count])?;
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
        let watching_writes = self.watching_writes;
        let stream = self.stream.as_ref().ok_or_else(unregistered)?;
        let head = &mut self.head;
        batch.write(|slices| write_after_head(stream, watching_writes, head, slices))
    }

    fn poll_writable(
        &mut self,
        cx: &mut Context<'_>,
        _client: &ClientShared,
    ) -> Poll<io::Result<()>> {
        if !self.watching_writes {
            self.watch_writes()?;
            // What waited on the old registration (the peer's FIN) waits on the new one once
            // polled again.
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.fd()?.poll_write_ready(cx).map_ok(|_ready| ())
    }

    fn poll_gone(&mut self, cx: &mut Context<'_>) -> Poll<CloseReason> {
        // On the stack, not in the task: every idle connection's task would carry it.
        let mut discard = [0u8; 64];
        let stream = match self.fd() {
            Ok(stream) => stream,
            Err(e) => return Poll::Ready(classify(&e)),
        };
        for _ in 0..MAX_READS_PER_POLL {
            let mut ready = match stream.poll_read_ready(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(classify(&e)),
                Poll::Ready(Ok(ready)) => ready,
            };
            match ready.try_io(|socket| {
                use std::io::Read;
                socket.get_ref().read(&mut discard)
            }) {
                Ok(Ok(0)) => return Poll::Ready(CloseReason::Client),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Poll::Ready(classify(&e)),
                // WouldBlock cleared the readiness: the next poll registers for more.
                Err(_would_block) => {}
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    fn finish(&mut self, limit: Duration) -> impl Future<Output = io::Result<usize>> + Send {
        let last: &'static [u8] = if self.chunked { LAST_CHUNK } else { &[] };
        // A stream that ends before its first batch still gets its head: an end without one
        // would read as a broken response, not as an empty stream.
        let head = std::mem::take(&mut self.head);
        async move {
            let end = async {
                write_all(self, &head).await?;
                write_all(self, last).await?;
                self.fd()?.get_ref().shutdown(Shutdown::Write)?;
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
        if let Some(stream) = &self.stream {
            let _ = socket2::SockRef::from(stream.get_ref()).set_linger(Some(Duration::ZERO));
        }
    }

    fn socket_fd(&self) -> Option<RawFd> {
        self.stream.as_ref().map(|stream| stream.as_raw_fd())
    }

    fn parks(&self) -> bool {
        true
    }

    fn poll_parked(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        // Readable is all `poll_gone` looks for: FIN, RST and stray bytes all make it so.
        // Unregistered: ready, so that `poll_gone` reports it.
        match self.fd() {
            Ok(stream) => stream.poll_read_ready(cx).map(|_| ()),
            Err(_) => Poll::Ready(()),
        }
    }
}
