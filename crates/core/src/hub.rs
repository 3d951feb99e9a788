//! The hub's front: the embedder's calls on clients (register, adopt or start a transport,
//! send, close) and the runtime their writer tasks run on. Publishing is in `publish`,
//! subscriptions and per-channel settings in `subscriptions`, what an operator reads in
//! `metrics`, the staged close in `shutdown`; all of them act on the hub's `state`.
//!
//! `send` queues into the one client's mailbox. Each writer merges its mailbox and its cursors
//! by sequence number (`feed`). A client's end is reported through `HubEvents::closed` exactly
//! once: either by its writer task's drop guard (even on panic or runtime shutdown), or
//! directly when it closes before its transport was started.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use bytes::{Bytes, BytesMut};
use tokio::runtime::Runtime;
use tokio::sync::Notify;

use crate::admission::Refusal;
use crate::client::{ClientShared, Phase};
use crate::close::CloseReason;
use crate::config::{HubConfig, OverflowPolicy};
use crate::error::SseError;
use crate::events::HubEvents;
use crate::frame::{self, encode_comment, opening_frame, Message, Valid};
use crate::heartbeat_queue::HeartbeatQueue;
use crate::log::{ChannelLog, Cursor};
use crate::mailbox::Mailbox;
use crate::registry::{join, Fresh, Registry};
use crate::relay_sink::RelaySink;
use crate::relay_sink::RELAY_CREDIT_BYTES;
use crate::resume::{placement, Epoch, Resume};
use crate::sequence::Sequence;
use crate::socket::SocketFd;
use crate::state::{Delivery, HubState};
use crate::stats::{Audience, Stats, StatsSnapshot, Transport};
use crate::wakeup::WRITABLE;
use crate::writer::{FinishGuard, Sink};

pub struct Hub {
    pub(crate) inner: Arc<HubState>,
    runtime: Option<Runtime>,
}

impl Hub {
    pub fn new(config: HubConfig, events: Box<dyn HubEvents>) -> io::Result<Hub> {
        let events: Arc<dyn HubEvents> = Arc::from(events);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.worker_threads)
            .thread_name("native-sse")
            .enable_io()
            .enable_time()
            .build()?;
        let broadcast_log = Arc::new(ChannelLog::new(
            None,
            config.max_lag_events,
            config.max_lag_bytes,
            config.history,
        ));
        broadcast_log.compress_with(config.gzip);
        let inner = Arc::new(HubState {
            config,
            registry: RwLock::new(Registry::default()),
            broadcast_log,
            sequence: Arc::new(Sequence::new()),
            epoch: Epoch::new(),
            backend: OnceLock::new(),
            remote_applied: AtomicU64::new(0),
            dirty_logs: Mutex::new(Vec::new()),
            dispatch: Notify::new(),
            next_id: AtomicU64::new(1),
            next_hold: AtomicU64::new(1),
            refusing: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            drain_limit_ms: AtomicU64::new(0),
            stats: Arc::new(Stats::default()),
            events,
            runtime: runtime.handle().clone(),
            heartbeats: HeartbeatQueue::default(),
        });
        runtime.spawn(crate::dispatch::dispatch(inner.clone()));
        runtime.spawn(crate::expiry::expire(inner.clone()));
        runtime.spawn(crate::heartbeats::send_heartbeats(inner.clone()));
        Ok(Hub {
            inner,
            runtime: Some(runtime),
        })
    }

    pub fn config(&self) -> &HubConfig {
        &self.inner.config
    }

    pub(crate) fn inner(&self) -> &Arc<HubState> {
        &self.inner
    }

    pub(crate) fn runtime(&self) -> Option<&Runtime> {
        self.runtime.as_ref()
    }

    /// The hub's counters, which outlive it: an embedder can still report them after close.
    pub fn stats_handle(&self) -> Arc<Stats> {
        self.inner.stats.clone()
    }

    /// Whether a client subscribed to `channels` would be refused now, and why: what a `HEAD`
    /// request is answered (the head a `GET` would get), without registering or counting
    /// anything. A later register may still be refused: caps move.
    /// Throws as `register` would past `max_channels_per_client`.
    pub fn admission(&self, channels: &[String]) -> Result<Option<Refusal>, SseError> {
        let config = &self.inner.config;
        if channels.len() > config.max_channels_per_client {
            return Err(SseError::TooManyChannels {
                count: channels.len(),
                limit: config.max_channels_per_client,
            });
        }
        if self.inner.refusing.load(Ordering::Acquire) {
            return Ok(Some(Refusal::Closing));
        }
        let registry = self.inner.read_registry();
        Ok(if registry.clients.len() >= config.max_clients {
            Some(Refusal::HubFull)
        } else if channels.iter().any(|name| registry.channel_full(name)) {
            Some(Refusal::ChannelFull)
        } else {
            None
        })
    }

    /// Registers a client whose transport starts later (`adopt`, `start_node` or
    /// `start_fetch`), subscribed to `channels`. Its opening frame (`retry`, or a comment) is
    /// queued first, so the first body bytes leave as soon as the transport starts and precede
    /// anything published later. With `last_event_id`, its cursors in logs that keep history
    /// are placed just past that event, so the writer replays what it missed before going on
    /// live; when the id cannot be placed it gets the reset event and starts at the head.
    /// Refused (and counted) while the hub closes or when a cap is reached; nothing is queued
    /// then.
    pub fn register(
        &self,
        retry: Option<u64>,
        channels: Vec<String>,
        last_event_id: Option<&str>,
    ) -> Result<(u64, Resume), SseError> {
        self.enrol(retry, channels, last_event_id, false)
    }

    /// `register`, held: the embedder still has to decide (an asynchronous authorization), so
    /// it is not counted as opened until `admit`, and `withdraw` takes it back without a trace
    /// but the refusal. Nothing it is sent is written before its transport starts anyway.
    pub fn register_held(
        &self,
        retry: Option<u64>,
        channels: Vec<String>,
        last_event_id: Option<&str>,
    ) -> Result<(u64, Resume), SseError> {
        self.enrol(retry, channels, last_event_id, true)
    }

    /// A held client was let in: it counts as opened from now.
    pub fn admit(&self, id: u64) -> bool {
        let pending = self.inner.client(id).is_some_and(|c| c.is_pending());
        if pending {
            self.inner.stats.add_connection_opened();
        }
        pending
    }

    /// A held client was refused (`refusal`): it leaves the registry and its channels without
    /// a `closed` and without counting as opened or closed. False when it is gone or running.
    pub fn withdraw(&self, id: u64, refusal: Refusal) -> bool {
        match self.inner.client(id) {
            Some(client) => self.inner.withdraw(&client, refusal),
            None => false,
        }
    }

    /// Counts a request the embedder refused before registering it (its own rules).
    pub fn count_refusal(&self, refusal: Refusal) {
        self.inner.stats.add_refused(refusal);
    }

    fn enrol(
        &self,
        retry: Option<u64>,
        channels: Vec<String>,
        last_event_id: Option<&str>,
        held: bool,
    ) -> Result<(u64, Resume), SseError> {
        crate::test_hooks::on_register(&channels);
        let config = &self.inner.config;
        if channels.len() > config.max_channels_per_client {
            return Err(SseError::TooManyChannels {
                count: channels.len(),
                limit: config.max_channels_per_client,
            });
        }
        // Decided under the lock that inserts, so concurrent registers cannot overshoot a cap
        // and a close that flags `refusing` then lists the clients misses none.
        let mut registry = self.inner.write_registry();
        let refusal = if self.inner.refusing.load(Ordering::Acquire) {
            Some(Refusal::Closing)
        } else if registry.clients.len() >= config.max_clients {
            Some(Refusal::HubFull)
        } else if channels.iter().any(|name| registry.channel_full(name)) {
            Some(Refusal::ChannelFull)
        } else {
            None
        };
        if let Some(refusal) = refusal {
            return Err(SseError::Refused(self.inner.stats.add_refused(refusal)));
        }
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let queue = Mailbox::new(
            config.max_lag_events,
            config.max_lag_bytes,
            config.overflow,
            config.high_water_bytes,
        );
        let sequence = &self.inner.sequence;
        let opening = sequence.take();
        queue.push(opening, opening_frame(retry));
        sequence.commit(opening);
        let mut logs = vec![self.inner.broadcast_log.clone()];
        for name in &channels {
            logs.push(registry.channel(name, config).log.clone());
        }
        let (resume, after) = placement(
            last_event_id,
            &logs,
            &self.inner.epoch,
            self.inner.last_position(),
        );
        if let Resume::Reset(reason) = resume {
            let seq = sequence.take();
            queue.push(seq, self.inner.reset_frame(reason)?);
            sequence.commit(seq);
        }
        let broadcast = &self.inner.broadcast_log;
        let cursors = vec![Cursor::at(broadcast.clone(), join(broadcast, after, false))];
        let client = Arc::new(ClientShared::new(id, opening, queue, cursors));
        // None is full: that was checked for all of them before anything was queued.
        for name in channels {
            registry.subscribe(&client, &name, config, after, Fresh::Yes, usize::MAX);
        }
        registry.clients.insert(id, client);
        drop(registry);
        if !held {
            self.inner.stats.add_connection_opened();
        }
        self.inner.stats.add_resume(resume);
        Ok((id, resume))
    }

    /// Takes over the connected socket `fd` (the caller keeps and later closes its own fd)
    /// and starts the client's writer task. `release_fd` runs once every check has passed and
    /// the socket is ours, just before the writer starts: the embedder drops its own poller
    /// registration there, so a failed adoption leaves the embedder's socket untouched.
    #[cfg(unix)]
    pub fn adopt(
        &self,
        id: u64,
        fd: SocketFd,
        chunked: bool,
        release_fd: impl FnOnce(SocketFd),
    ) -> Result<(), SseError> {
        self.adopt_with_head(id, fd, chunked, Bytes::new(), release_fd)
    }

    /// As `adopt`, for a response whose head the embedder rendered but did not send: `head`
    /// goes out in the same write as the first body bytes, so a connection costs one segment
    /// and the embedder has no write of its own to wait for before handing the socket over.
    #[cfg(unix)]
    pub fn adopt_with_head(
        &self,
        id: u64,
        fd: SocketFd,
        chunked: bool,
        head: Bytes,
        release_fd: impl FnOnce(SocketFd),
    ) -> Result<(), SseError> {
        self.take_socket(id, fd, chunked, head, false, release_fd)
    }

    /// As `adopt_with_head`, for a connection whose request the embedder only peeked at
    /// (request_head.rs) and never read: what the peer sent is read and dropped first, so
    /// the writer's first poll finds nothing to read and parks where it runs, instead of
    /// waking a runtime thread to discard the request.
    #[cfg(unix)]
    pub fn adopt_request(
        &self,
        id: u64,
        fd: SocketFd,
        chunked: bool,
        head: Bytes,
    ) -> Result<(), SseError> {
        self.take_socket(id, fd, chunked, head, true, |_| {})
    }

    #[cfg(unix)]
    fn take_socket(
        &self,
        id: u64,
        fd: SocketFd,
        chunked: bool,
        head: Bytes,
        discard_request: bool,
        release_fd: impl FnOnce(SocketFd),
    ) -> Result<(), SseError> {
        let client = self
            .inner
            .client(id)
            .filter(|client| client.is_pending())
            .ok_or(SseError::UnknownClient { id })?;
        let runtime = self.runtime.as_ref().ok_or(SseError::HubClosed)?;
        let adopt_error = |e: io::Error| SseError::Adopt {
            reason: e.to_string(),
        };
        let write_timeout = self.inner.config.write_timeout;
        let std_stream = if discard_request {
            let stream =
                crate::socket::adopt_accepted_fd(fd, write_timeout).map_err(adopt_error)?;
            crate::socket::discard_received(&stream);
            stream
        } else {
            crate::socket::adopt_fd(fd, write_timeout).map_err(adopt_error)?
        };
        let sink = {
            let _context = runtime.enter();
            crate::socket_sink::SocketSink::new(std_stream, chunked, head).map_err(adopt_error)?
        };
        release_fd(fd);
        // Closed while the head was flushing: dropping the sink closes our duplicate.
        self.start_writer(runtime, client, Transport::Native, sink)
    }

    /// Without POSIX descriptors there is no socket to take over (see `socket`).
    #[cfg(not(unix))]
    pub fn adopt(
        &self,
        id: u64,
        _fd: SocketFd,
        _chunked: bool,
        _release_fd: impl FnOnce(SocketFd),
    ) -> Result<(), SseError> {
        self.inner
            .client(id)
            .filter(|client| client.is_pending())
            .ok_or(SseError::UnknownClient { id })?;
        Err(SseError::Adopt {
            reason: "this platform has no socket descriptors to hand over".into(),
        })
    }

    #[cfg(not(unix))]
    pub fn adopt_request(
        &self,
        id: u64,
        fd: SocketFd,
        chunked: bool,
        _head: Bytes,
    ) -> Result<(), SseError> {
        self.adopt(id, fd, chunked, |_| {})
    }

    #[cfg(not(unix))]
    pub fn adopt_with_head(
        &self,
        id: u64,
        fd: SocketFd,
        chunked: bool,
        _head: Bytes,
        release_fd: impl FnOnce(SocketFd),
    ) -> Result<(), SseError> {
        self.adopt(id, fd, chunked, release_fd)
    }

    /// Starts serving client `id` through its embedder (`HubEvents::write`), for connections
    /// whose socket cannot be adopted. `socket_fd`, where known, is the TCP socket under the
    /// response: looked at to see whether the peer still reads, and given the keepalive and
    /// `TCP_USER_TIMEOUT` an adopted socket gets, so a peer that vanished is found as soon.
    pub fn start_node(&self, id: u64, socket_fd: Option<SocketFd>) -> Result<(), SseError> {
        self.start_relay(id, Transport::Node, socket_fd)
    }

    /// Starts serving client `id` through its embedder (`HubEvents::write`) into the body of
    /// a Fetch API `Response`: as `start_node`, with no socket to look at, and counted as
    /// `Transport::Fetch`. `heartbeat`: its own period, for a runtime that cuts a response
    /// quiet for less than the hub's (None: the hub's).
    pub fn start_fetch(
        &self,
        id: u64,
        heartbeat: Option<std::time::Duration>,
    ) -> Result<(), SseError> {
        if let Some(period) = heartbeat {
            if let Some(client) = self.inner.client(id) {
                client.set_heartbeat(period);
            }
        }
        self.start_relay(id, Transport::Fetch, None)
    }

    /// A writer whose batches the embedder writes (`RelaySink`), counted under `transport`.
    fn start_relay(
        &self,
        id: u64,
        transport: Transport,
        socket_fd: Option<SocketFd>,
    ) -> Result<(), SseError> {
        let client = self
            .inner
            .client(id)
            .ok_or(SseError::UnknownClient { id })?;
        let runtime = self.runtime.as_ref().ok_or(SseError::HubClosed)?;
        if let Some(fd) = socket_fd {
            // Best effort: a socket that refuses the options (not TCP) is still served, and
            // its vanished peers are found by the write deadline once its buffers fill.
            let _ = crate::socket::watch_node_socket(fd, self.inner.config.write_timeout);
        }
        // A Node response takes one batch at a time: what it was not yet seen to accept
        // stays counted, so `send()` pushes back exactly at the high-water mark even within
        // one synchronous loop of sends. A Fetch body acknowledged every batch its queue had
        // room for at once already: it takes them on credit (relay_sink.rs).
        let credit = (transport == Transport::Fetch).then_some(RELAY_CREDIT_BYTES);
        let sink = RelaySink::new(id, self.inner.events.clone(), socket_fd, credit);
        self.start_writer(runtime, client, transport, sink)
    }

    /// Runs a pending client's writer task over `sink`, counted under `transport`; its end (or
    /// its panic, or the runtime dropping it) is reported exactly once through the guard. A
    /// client closed meanwhile is not started.
    fn start_writer<S: Sink + Send + 'static>(
        &self,
        runtime: &Runtime,
        client: Arc<ClientShared>,
        transport: Transport,
        sink: S,
    ) -> Result<(), SseError> {
        if !client.advance(Phase::Pending, Phase::running(transport)) {
            return Err(SseError::UnknownClient { id: client.id });
        }
        self.inner.stats.writer_started(transport);
        let guard = FinishGuard {
            hub: self.inner.clone(),
            id: client.id,
            reason: None,
        };
        crate::writer::start(runtime, guard, sink, client);
        Ok(())
    }

    /// Client `id`'s transport starts in a moment (its head waits for the next turn): a close
    /// the server asks for meanwhile drains through that transport once it starts. The
    /// embedder must then start it or close the client with another reason. False when there
    /// is no such client.
    pub fn will_start(&self, id: u64) -> bool {
        match self.inner.client(id).filter(|client| client.is_pending()) {
            Some(client) => {
                client.set_starting();
                true
            }
            None => false,
        }
    }

    /// Gives client `id` a heartbeat period of its own, for a proxy or runtime that cuts a
    /// response quiet for less than the hub's; call before its writer starts. False when
    /// there is no such client.
    pub fn set_heartbeat(&self, id: u64, period: std::time::Duration) -> bool {
        match self.inner.client(id) {
            Some(client) => {
                client.set_heartbeat(period);
                true
            }
            None => false,
        }
    }

    /// Makes client `id`'s stream gzip (gzip.rs), before its transport starts: the embedder
    /// has sent `Content-Encoding: gzip` in its head. False when the hub does not compress
    /// (`HubConfig::gzip`) or there is no such client waiting to start.
    pub fn use_gzip(&self, id: u64) -> bool {
        if self.inner.config.gzip.is_none() {
            return false;
        }
        match self.inner.client(id) {
            Some(client) if client.is_pending() => {
                client.use_gzip();
                true
            }
            _ => false,
        }
    }

    /// Relay: client `id`'s response took its batches up to `bytes` (counted from its start)
    /// and accepts more. False if it is gone.
    pub fn relay_acknowledged(&self, id: u64, bytes: u64) -> bool {
        match self.inner.client(id) {
            Some(client) => {
                client.relay_acknowledge(bytes);
                client.wakeup.notify(WRITABLE);
                true
            }
            None => false,
        }
    }

    /// Client `id`'s response refused the batch it took last: nothing more is handed until
    /// `relay_acknowledged`, and its write deadline runs. False if it is gone.
    pub fn relay_refused(&self, id: u64) -> bool {
        match self.inner.client(id) {
            Some(client) => {
                client.relay_refuse();
                true
            }
            None => false,
        }
    }

    /// Queues one message for one client.
    pub fn send(&self, id: u64, message: &Message<'_>) -> Result<Delivery, SseError> {
        let frame = self.encode(message)?;
        let delivery = self.send_frames(id, std::iter::once(frame));
        self.count_sent(delivery, 1);
        Ok(delivery)
    }

    /// Queues several messages for one client, in order, as one call (a producer streaming
    /// many small events). All are encoded first, into one buffer the frames share, so an
    /// invalid one queues none: the error comes with its index. The writer is woken once.
    pub fn send_many(
        &self,
        id: u64,
        messages: &[Message<'_>],
    ) -> Result<Delivery, (usize, SseError)> {
        let mut frames = EncodedBatch::with_capacity(0, messages.len());
        for (index, message) in messages.iter().enumerate() {
            message
                .encode_into(&mut frames.buffer)
                .and_then(|()| self.check_size(frames.frame_len()))
                .map_err(|error| (index, error))?;
            frames.end_frame();
        }
        Ok(self.send_batch(id, frames))
    }

    /// `send_many` of events with data alone (a token stream's usual item): one reserve for the
    /// batch, and no per-message field checks, since data alone is always a valid event.
    pub fn send_texts<T: AsRef<str>>(
        &self,
        id: u64,
        texts: &[T],
    ) -> Result<Delivery, (usize, SseError)> {
        let bytes = texts.iter().map(|text| text.as_ref().len()).sum::<usize>()
            + texts.len() * frame::DATA_FRAME_OVERHEAD;
        let mut frames = EncodedBatch::with_capacity(bytes, texts.len());
        for (index, text) in texts.iter().enumerate() {
            frame::encode_data_into(text.as_ref(), &mut frames.buffer);
            self.check_size(frames.frame_len())
                .map_err(|error| (index, error))?;
            frames.end_frame();
        }
        Ok(self.send_batch(id, frames))
    }

    /// Queues a batch encoded back to back. Under `Disconnect` it takes one mailbox slot (one
    /// sequence number, one push, and one iovec for the writer: per 20-byte token, a slot and
    /// an iovec each cost about as much as the bytes); under `DropOldest`, one per frame, so
    /// an overflow still drops single events.
    fn send_batch(&self, id: u64, batch: EncodedBatch) -> Delivery {
        let events = batch.ends.len();
        let delivery = if self.inner.closed.load(Ordering::Acquire) {
            Delivery::Gone
        } else {
            match self.inner.client(id) {
                None => Delivery::Gone,
                Some(client) => match client.mailbox.policy() {
                    OverflowPolicy::Disconnect if events > 1 => {
                        let count = u32::try_from(events).unwrap_or(u32::MAX);
                        self.inner
                            .deliver_batch(&client, batch.buffer.freeze(), count)
                    }
                    _ => self.inner.deliver(&client, batch.into_frames()),
                },
            }
        };
        self.count_sent(delivery, events as u64);
        delivery
    }

    /// Events sent to one client count as published once queued (an overflow that cut the
    /// client part-way counts them all: the call was accepted).
    fn count_sent(&self, delivery: Delivery, events: u64) {
        if delivery != Delivery::Gone {
            self.inner.stats.add_published(Audience::Client, events);
        }
    }

    pub fn comment(&self, id: u64, text: &str) -> Result<Delivery, SseError> {
        let frame = self.encode_comment(text)?;
        Ok(self.send_frames(id, std::iter::once(frame)))
    }

    /// Asks one client to close. `Server` drains what is queued first; other reasons cut.
    pub fn close_client(&self, id: u64, reason: CloseReason) -> bool {
        match self.inner.client(id) {
            Some(client) => {
                self.inner.close(&client, reason);
                true
            }
            None => false,
        }
    }

    /// Stops accepting clients and closes every client with `Server`.
    pub fn close_all(&self) {
        self.inner.closed.store(true, Ordering::Release);
        for client in self.inner.stop_accepting() {
            self.inner.close(&client, CloseReason::Server);
        }
    }

    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    pub fn size(&self) -> usize {
        self.inner.read_registry().clients.len()
    }

    /// Bytes waiting in client `id`'s own queue (what `send` and `send_many` put there, the
    /// measure of its high-water mark), or `None` once it is gone. An embedder that holds sends
    /// back to cross in batches keeps its own count from here, so its producers still hear
    /// "above the high-water mark" at the send that crosses it.
    pub fn queued_bytes(&self, id: u64) -> Option<usize> {
        let client = self.inner.client(id)?;
        if client.close_requested().is_some() {
            return None;
        }
        Some(client.mailbox.queued_bytes())
    }

    /// Subscribers of `channel`.
    pub fn channel_size(&self, channel: &str) -> usize {
        self.inner
            .read_registry()
            .channels
            .get(channel)
            .map_or(0, |c| c.subscribers.len())
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.inner.stats.snapshot()
    }

    pub(crate) fn encode(&self, message: &Message<'_>) -> Result<Bytes, SseError> {
        self.encode_valid(&message.validate()?)
    }

    /// Encodes a message validated before, within the event size limit.
    pub(crate) fn encode_valid(&self, message: &Valid<'_>) -> Result<Bytes, SseError> {
        let frame = message.encode();
        self.check_size(frame.len())?;
        Ok(frame)
    }

    pub(crate) fn encode_comment(&self, text: &str) -> Result<Bytes, SseError> {
        let frame = encode_comment(text);
        self.check_size(frame.len())?;
        Ok(frame)
    }

    pub(crate) fn check_size(&self, size: usize) -> Result<(), SseError> {
        let limit = self.inner.config.max_event_bytes;
        if size > limit {
            return Err(SseError::EventTooLarge { size, limit });
        }
        Ok(())
    }

    fn send_frames(&self, id: u64, frames: impl Iterator<Item = Bytes>) -> Delivery {
        if self.inner.closed.load(Ordering::Acquire) {
            return Delivery::Gone;
        }
        match self.inner.client(id) {
            Some(client) => self.inner.deliver(&client, frames),
            None => Delivery::Gone,
        }
    }
}

/// Frames encoded back to back into one buffer, and where each ends.
struct EncodedBatch {
    buffer: BytesMut,
    ends: Vec<usize>,
}

impl EncodedBatch {
    fn with_capacity(bytes: usize, frames: usize) -> Self {
        EncodedBatch {
            buffer: BytesMut::with_capacity(bytes),
            ends: Vec::with_capacity(frames),
        }
    }

    /// The length of the frame being encoded.
    fn frame_len(&self) -> usize {
        self.buffer.len() - self.ends.last().copied().unwrap_or(0)
    }

    fn end_frame(&mut self) {
        self.ends.push(self.buffer.len());
    }

    /// One `Bytes` per frame, sharing the buffer.
    fn into_frames(self) -> impl Iterator<Item = Bytes> {
        let mut buffer = self.buffer.freeze();
        let mut start = 0;
        self.ends.into_iter().map(move |end| {
            let frame = buffer.split_to(end - start);
            start = end;
            frame
        })
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.close_all();
        if let Some(runtime) = self.runtime.take() {
            // Tasks still running are dropped; their guards report `server`.
            runtime.shutdown_background();
        }
    }
}

impl Hub {
    /// Stops the runtime after `close_all`, waiting up to `limit` for writer tasks to finish
    /// draining. Remaining tasks are dropped and reported as `server` closes.
    pub fn shutdown(&mut self, limit: std::time::Duration) {
        self.close_all();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(limit);
        }
    }
}
