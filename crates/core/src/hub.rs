//! The hub: the calls of its embedder (register, adopt, publish, send, close), the runtime
//! that runs the writer tasks, and the dispatcher that wakes them (`registry` holds who reads
//! what; `lifecycle` records departures).
//!
//! `broadcast` and `publish` encode once and append to one log (the broadcast log, or the
//! channel's): O(1) on the publishing thread whatever the audience. Waking the subscribers'
//! writers happens on the runtime, in the dispatcher task, once per burst of appends. `send`
//! queues into the one client's mailbox. Each writer merges its mailbox and its cursors by
//! sequence number (`feed`). A client's end is reported through `HubEvents::closed` exactly
//! once: either by its writer task's drop guard (even on panic or runtime shutdown), or
//! directly when it closes before its transport was started.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio::runtime::Runtime;
use tokio::sync::Notify;

use crate::admission::Refusal;
use crate::backend::{Backend, Outgoing, ID_LINE_MAX};
use crate::client::{ClientShared, Phase};
use crate::close::CloseReason;
use crate::config::{History, HubConfig};
use crate::error::SseError;
use crate::events::HubEvents;
use crate::feed::Cursor;
use crate::frame::{encode_comment, opening_frame, Message};
use crate::lifecycle::{write_client, FinishGuard};
use crate::log::ChannelLog;
use crate::node_sink::NodeSink;
use crate::queue::{ClientQueue, Push};
use crate::registry::{join, Registry, Subscribe};
use crate::resume::{Epoch, IdOrigin, ResetReason, Resume};
use crate::sequence::Sequence;
use crate::socket::SocketFd;
use crate::stats::{Audience, Stats, StatsSnapshot, Transport};
use crate::wakeup::{DATA, WRITABLE};
use crate::writer::Sink;

pub struct Hub {
    inner: Arc<HubInner>,
    runtime: Option<Runtime>,
}

pub(crate) struct HubInner {
    pub config: HubConfig,
    registry: RwLock<Registry>,
    /// The log `broadcast` appends to; every client reads it.
    pub(crate) broadcast_log: Arc<ChannelLog>,
    pub sequence: Arc<Sequence>,
    /// Stamped into the ids the hub makes.
    pub(crate) epoch: Epoch,
    /// Where `publish` and `broadcast` go instead of the local logs (see `backend`).
    pub(crate) backend: OnceLock<Arc<dyn Backend>>,
    /// The highest position the backend fed this hub.
    pub(crate) remote_applied: AtomicU64,
    /// Logs appended to since the dispatcher last ran, and its wakeup.
    dirty_logs: Mutex<Vec<Arc<ChannelLog>>>,
    dispatch: Notify,
    next_id: AtomicU64,
    /// No new client is accepted: a close has begun (staged or not).
    refusing: AtomicBool,
    /// Closed: nothing more is accepted, not even events.
    pub(crate) closed: AtomicBool,
    /// How long a server-requested close may drain, in milliseconds; 0: no limit beyond the
    /// write timeout. Set by a staged close.
    pub(crate) drain_limit_ms: AtomicU64,
    pub stats: Arc<Stats>,
    pub events: Arc<dyn HubEvents>,
}

/// What became of a frame sent to one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The client is gone or closing: nothing was queued.
    Gone,
    Queued,
    /// Queued, and what was sent to this client alone is now above the high-water mark: the
    /// producer should wait for `HubEvents::drained`.
    AboveHighWater,
}

/// Per-client queue levels, summed over the hub.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueLevels {
    pub clients: usize,
    pub queued_events: usize,
    pub queued_bytes: usize,
    /// The largest byte level of any one client: the figure the per-client bound applies to.
    pub max_client_bytes: usize,
    /// Frames and bytes the logs hold, once however many clients read them.
    pub held_events: usize,
    pub held_bytes: usize,
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
            config.max_queue_events,
            config.max_queue_bytes,
            config.history,
        ));
        let inner = Arc::new(HubInner {
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
            refusing: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            drain_limit_ms: AtomicU64::new(0),
            stats: Arc::new(Stats::default()),
            events,
        });
        runtime.spawn(dispatch(inner.clone()));
        Ok(Hub {
            inner,
            runtime: Some(runtime),
        })
    }

    pub fn config(&self) -> &HubConfig {
        &self.inner.config
    }

    pub(crate) fn inner(&self) -> &Arc<HubInner> {
        &self.inner
    }

    pub(crate) fn runtime(&self) -> Option<&Runtime> {
        self.runtime.as_ref()
    }

    /// The hub's counters, which outlive it: an embedder can still report them after close.
    pub fn stats_handle(&self) -> Arc<Stats> {
        self.inner.stats.clone()
    }

    /// Registers a client whose transport starts later (`adopt` or `start_node`), subscribed
    /// to `channels`. Its opening frame (`retry`, or a comment) is queued first, so the first
    /// body bytes leave as soon as the transport starts and precede anything published later.
    /// With `last_event_id`, its cursors in logs that keep history are placed just past that
    /// event, so the writer replays what it missed before going on live; when the id cannot
    /// be placed it gets the reset event and starts at the head. Refused (and counted) while
    /// the hub closes or when a cap is reached; nothing is queued then.
    pub fn register(
        &self,
        retry: Option<u64>,
        channels: Vec<String>,
        last_event_id: Option<&str>,
    ) -> Result<(u64, Resume), SseError> {
        crate::test_hooks::on_register(&channels);
        let config = &self.inner.config;
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
        let queue = ClientQueue::new(
            config.max_queue_events,
            config.max_queue_bytes,
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
        let (resume, after) = match last_event_id.filter(|id| !id.is_empty()) {
            Some(event_id) if logs.iter().any(|log| log.has_history()) => {
                match self.inner.place(event_id, &logs) {
                    Ok(seq) => (Resume::Replayed, Some(seq)),
                    Err(reason) => (Resume::Reset(reason), None),
                }
            }
            _ => (Resume::None, None),
        };
        if let Resume::Reset(reason) = resume {
            let seq = sequence.take();
            queue.push(seq, self.inner.reset_frame(reason)?);
            sequence.commit(seq);
        }
        let broadcast = &self.inner.broadcast_log;
        let cursors = vec![Cursor::at(broadcast.clone(), join(broadcast, after))];
        let client = Arc::new(ClientShared::new(id, opening, queue, cursors));
        // None is full: that was checked for all of them before anything was queued.
        for name in channels {
            registry.subscribe(&client, &name, config, after);
        }
        registry.clients.insert(id, client);
        drop(registry);
        self.inner.stats.add_attached();
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
        let client = self
            .inner
            .client(id)
            .filter(|client| client.is_pending())
            .ok_or(SseError::UnknownClient { id })?;
        let runtime = self.runtime.as_ref().ok_or(SseError::HubClosed)?;
        let adopt_error = |e: io::Error| SseError::Adopt {
            reason: e.to_string(),
        };
        let std_stream =
            crate::socket::adopt_fd(fd, self.inner.config.write_timeout).map_err(adopt_error)?;
        let stream = {
            let _context = runtime.enter();
            tokio::net::TcpStream::from_std(std_stream).map_err(adopt_error)?
        };
        release_fd(fd);
        // Closed while the head was flushing: dropping the sink closes our duplicate.
        self.start_writer(
            runtime,
            client,
            Transport::Native,
            crate::socket_sink::SocketSink::new(stream, chunked),
        )
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

    /// Starts serving client `id` through its embedder (`HubEvents::write`), for connections
    /// whose socket cannot be adopted. `socket_fd`, where known, is the TCP socket under the
    /// response: looked at to see whether the peer still reads, and given the keepalive and
    /// `TCP_USER_TIMEOUT` an adopted socket gets, so a peer that vanished is found as soon.
    pub fn start_node(&self, id: u64, socket_fd: Option<SocketFd>) -> Result<(), SseError> {
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
        let sink = NodeSink::new(id, self.inner.events.clone(), socket_fd);
        self.start_writer(runtime, client, Transport::Node, sink)
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
        // The task is this one future, sized by `writer::run`: a wrapping `async` block would
        // keep a second copy of the writer's state in every connection's task.
        runtime.spawn(write_client(guard, sink, client));
        Ok(())
    }

    /// Node transport: the client's last batch was written and its response accepts more.
    pub fn node_writable(&self, id: u64) -> bool {
        match self.inner.client(id) {
            Some(client) => {
                client.wakeup.notify(WRITABLE);
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
        let mut buffer = BytesMut::new();
        let mut ends = Vec::with_capacity(messages.len());
        for (index, message) in messages.iter().enumerate() {
            let start = buffer.len();
            message
                .encode_into(&mut buffer)
                .and_then(|()| self.check_size(buffer.len() - start))
                .map_err(|error| (index, error))?;
            ends.push(buffer.len());
        }
        let mut buffer = buffer.freeze();
        let mut start = 0;
        let frames = ends.into_iter().map(|end| {
            let frame = buffer.split_to(end - start);
            start = end;
            frame
        });
        let delivery = self.send_frames(id, frames);
        self.count_sent(delivery, messages.len() as u64);
        Ok(delivery)
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

    /// Encodes once and queues the same frame for every client. Returns how many clients it
    /// was queued for.
    pub fn broadcast(&self, message: &Message<'_>) -> Result<usize, SseError> {
        self.publish_to(None, message)
    }

    /// Encodes once and appends the frame to `channel`'s log, for its subscribers.
    pub fn publish(&self, channel: &str, message: &Message<'_>) -> Result<usize, SseError> {
        self.publish_to(Some(channel), message)
    }

    pub fn broadcast_comment(&self, text: &str) -> Result<usize, SseError> {
        crate::test_hooks::on_hub_comment(text);
        let frame = self.encode_comment(text)?;
        if self.inner.closed.load(Ordering::Acquire) {
            return Ok(0);
        }
        let (log, readers) = self.inner.target(None);
        let seq = self.inner.sequence.take();
        self.inner
            .append_entry(log, seq, seq, frame, None, Instant::now());
        Ok(readers)
    }

    /// Appends `message` to the broadcast log or `channel`'s, with an id the hub makes when
    /// that log keeps history and the message has none; returns the log's readers. O(1) here:
    /// the writers are woken by the dispatcher.
    fn publish_to(&self, channel: Option<&str>, message: &Message<'_>) -> Result<usize, SseError> {
        message.validate()?;
        if self.inner.closed.load(Ordering::Acquire) {
            return Ok(0);
        }
        if let Some(backend) = self.inner.backend.get() {
            return self.publish_through(backend.as_ref(), channel, message);
        }
        let (audience, target) = match channel {
            Some(name) => (Audience::Channel, self.inner.channel_target(name)),
            None => (Audience::Broadcast, Some(self.inner.target(None))),
        };
        let Some((log, readers)) = target else {
            // Nobody reads it, but a call that would fail with readers fails here too (encoded
            // only when the cheap bound leaves the size in doubt), and an accepted event counts
            // as published.
            if message.encoded_len_bound() > self.inner.config.max_event_bytes {
                self.encode(message)?;
            }
            self.inner.stats.add_published(audience, 1);
            return Ok(0);
        };
        let seq = self.inner.sequence.take();
        let hub_id;
        let mut stamped = *message;
        if log.has_history() && message.id.is_none() {
            hub_id = self.inner.epoch.event_id(seq);
            stamped.id = Some(&hub_id);
        }
        let frame = match self.encode(&stamped) {
            Ok(frame) => frame,
            Err(error) => {
                // The number is spent; committing it keeps the horizon moving.
                self.inner.sequence.commit(seq);
                return Err(error);
            }
        };
        self.inner
            .append_entry(log, seq, seq, frame, message.id, Instant::now());
        self.inner.stats.add_published(audience, 1);
        Ok(readers)
    }

    /// `publish_to` with a backend: encoded here (so a bad message throws here, and nothing is
    /// sent), numbered and fanned out by the backend, appended when it comes back. Returns the
    /// readers the target has here now. Counted as published when applied.
    fn publish_through(
        &self,
        backend: &dyn Backend,
        channel: Option<&str>,
        message: &Message<'_>,
    ) -> Result<usize, SseError> {
        let frame = message.encode()?;
        let id_line = if message.id.is_none() { ID_LINE_MAX } else { 0 };
        self.check_size(frame.len() + id_line)?;
        let (history, readers) = {
            let registry = self.inner.read_registry();
            match channel {
                Some(name) => (
                    registry.history_of(name, &self.inner.config),
                    registry
                        .channels
                        .get(name)
                        .map_or(0, |c| c.subscribers.len()),
                ),
                None => (self.inner.config.history, registry.clients.len()),
            }
        };
        backend.publish(Outgoing {
            channel: channel.map(Arc::from),
            app_id: message.id.map(Box::from),
            body: frame,
            keep_events: history.is_on().then_some(history.max_events),
            keep_for: history.max_age.filter(|_| history.is_on()),
        })?;
        Ok(readers)
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

    /// Subscribes client `id` to `channel` from now on (its cursor joins at the log's head).
    /// Returns false if the client is gone or was subscribed already.
    pub fn subscribe(&self, id: u64, channel: &str) -> bool {
        let Some(client) = self.inner.client(id) else {
            return false;
        };
        if client.close_requested().is_some() {
            return false;
        }
        let subscribe =
            self.inner
                .write_registry()
                .subscribe(&client, channel, &self.inner.config, None);
        if subscribe == Subscribe::Full {
            self.inner.stats.add_subscription_refused();
        }
        subscribe == Subscribe::Added
    }

    /// Ends client `id`'s subscription to `channel`; nothing published there reaches it any
    /// more. Returns false if it was not subscribed.
    pub fn unsubscribe(&self, id: u64, channel: &str) -> bool {
        let Some(client) = self.inner.client(id) else {
            return false;
        };
        let until = self.inner.sequence.committed();
        self.inner
            .write_registry()
            .unsubscribe(&client, channel, until)
    }

    /// Gives `channel` a history of its own (None: the hub's again). Takes effect at once:
    /// a channel whose history is on exists from now on, even without subscribers; entries a
    /// smaller history no longer keeps go once read.
    pub fn set_channel_history(&self, channel: &str, history: Option<History>) {
        let mut registry = self.inner.write_registry();
        let existed = registry.channels.contains_key(channel);
        registry.set_channel_history(channel, history, &self.inner.config);
        if !existed {
            if let Some(created) = registry.channels.get(channel) {
                // What was published before it existed was never kept here: a resume from
                // before now gets the reset signal, not a replay with a hole.
                created.log.raise_floor(self.inner.last_position());
            }
        }
    }

    /// Caps `channel`'s subscribers at `max_clients` from now on (None: no cap): an attach
    /// that asks for it when full is refused, a subscribe returns false.
    pub fn set_channel_cap(&self, channel: &str, max_clients: Option<usize>) {
        self.inner
            .write_registry()
            .set_channel_cap(channel, max_clients);
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

    pub fn queue_levels(&self) -> QueueLevels {
        let registry = self.inner.read_registry();
        let clients = &registry.clients;
        let mut levels = QueueLevels {
            clients: clients.len(),
            ..Default::default()
        };
        for client in clients.values() {
            let mut events = client.queue.queued_events();
            let mut bytes = client.queue.queued_bytes();
            for cursor in client.lock_cursors().iter() {
                let lag = cursor.log.lag(cursor.next);
                events += lag.events as usize;
                bytes += lag.bytes as usize;
            }
            levels.queued_events += events;
            levels.queued_bytes += bytes;
            levels.max_client_bytes = levels.max_client_bytes.max(bytes);
        }
        let logs = std::iter::once(&self.inner.broadcast_log)
            .chain(registry.channels.values().map(|c| &c.log));
        for log in logs {
            let (events, bytes) = log.held();
            levels.held_events += events;
            levels.held_bytes += bytes;
        }
        levels
    }

    pub(crate) fn encode(&self, message: &Message<'_>) -> Result<Bytes, SseError> {
        let frame = message.encode()?;
        self.check_size(frame.len())?;
        Ok(frame)
    }

    fn encode_comment(&self, text: &str) -> Result<Bytes, SseError> {
        let frame = encode_comment(text);
        self.check_size(frame.len())?;
        Ok(frame)
    }

    fn check_size(&self, size: usize) -> Result<(), SseError> {
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

/// Wakes the writers of every log appended to since the last round, on the runtime's
/// threads: a burst of publishes costs one round, and the publishing thread none of it.
async fn dispatch(hub: Arc<HubInner>) {
    let mut logs = Vec::new();
    loop {
        hub.dispatch.notified().await;
        std::mem::swap(&mut logs, &mut *hub.lock_dirty_logs());
        let registry = hub.read_registry();
        for log in logs.drain(..) {
            // A swap, not a store: it acquires what the appender released with its own swap,
            // so every append that found the flag set is visible to the writers woken here.
            log.dirty.swap(false, Ordering::AcqRel);
            let readers = match &log.name {
                None => Some(&registry.clients),
                Some(name) => registry.channels.get(name).map(|c| &c.subscribers),
            };
            for client in readers.into_iter().flat_map(HashMap::values) {
                client.wakeup.notify(DATA);
            }
        }
    }
}

impl HubInner {
    /// The position of the newest event: the backend's, or this hub's sequence.
    fn last_position(&self) -> u64 {
        if self.backend.get().is_some() {
            self.remote_applied.load(Ordering::Acquire)
        } else {
            self.sequence.committed()
        }
    }

    /// The broadcast log (None) or an existing channel's, with its readers now.
    pub(crate) fn target(&self, channel: Option<&str>) -> (Arc<ChannelLog>, usize) {
        let registry = self.read_registry();
        match channel.and_then(|name| registry.channels.get(name)) {
            Some(channel) => (channel.log.clone(), channel.subscribers.len()),
            None => (self.broadcast_log.clone(), registry.clients.len()),
        }
    }

    /// A channel's log and subscribers. A channel nobody reads exists only when logs keep
    /// history (a resuming client will want what it missed); otherwise None: nothing to do.
    pub(crate) fn channel_target(&self, name: &str) -> Option<(Arc<ChannelLog>, usize)> {
        let registry = self.read_registry();
        if let Some(channel) = registry.channels.get(name) {
            return Some((channel.log.clone(), channel.subscribers.len()));
        }
        if !registry.history_of(name, &self.config).is_on() {
            return None;
        }
        drop(registry);
        let mut registry = self.write_registry();
        let channel = registry.channel(name, &self.config);
        Some((channel.log.clone(), channel.subscribers.len()))
    }

    pub(crate) fn append_entry(
        &self,
        log: Arc<ChannelLog>,
        seq: u64,
        position: u64,
        frame: Bytes,
        app_id: Option<&str>,
        at: Instant,
    ) {
        let lag = log.append_at(seq, position, frame, app_id, at);
        self.sequence.commit(seq);
        self.stats.saw_lag(lag.events, lag.bytes);
        if log.mark_dirty() {
            self.lock_dirty_logs().push(log);
            self.dispatch.notify_one();
        }
    }

    /// The sequence number `event_id` names, if every log of `logs` that keeps history still
    /// holds everything published after it.
    fn place(&self, event_id: &str, logs: &[Arc<ChannelLog>]) -> Result<u64, ResetReason> {
        let seq = match logs.iter().filter_map(|l| l.find_app_id(event_id)).max() {
            Some(seq) => seq,
            None => match self.epoch.origin(event_id) {
                IdOrigin::Ours(position) if position <= self.last_position() => position,
                IdOrigin::Foreign => return Err(ResetReason::Foreign),
                IdOrigin::Ours(_) | IdOrigin::NotHubMade => return Err(ResetReason::Unknown),
            },
        };
        let covered = logs
            .iter()
            .filter(|log| log.has_history())
            .all(|log| log.covers(seq));
        if covered {
            Ok(seq)
        } else {
            Err(ResetReason::Expired)
        }
    }

    /// `event: <reset_event>` with `{"reason":"..."}` as data.
    pub(crate) fn reset_frame(&self, reason: ResetReason) -> Result<Bytes, SseError> {
        let data = format!("{{\"reason\":\"{}\"}}", reason.as_str());
        Message {
            event: Some(&self.config.reset_event),
            data: Some(&data),
            ..Default::default()
        }
        .encode()
    }

    pub(crate) fn read_registry(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        // A poisoned lock only means a panic elsewhere while holding it; the maps themselves
        // are still consistent (no code path panics between the paired updates).
        self.registry.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn write_registry(&self) -> std::sync::RwLockWriteGuard<'_, Registry> {
        self.registry.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Refuses every register from now on; returns the clients registered before.
    pub(crate) fn stop_accepting(&self) -> Vec<Arc<ClientShared>> {
        self.refusing.store(true, Ordering::Release);
        // Listed after the flag is set: a register either inserted before this read (and is
        // listed) or saw the flag under the registry lock (and was refused).
        self.read_registry().clients.values().cloned().collect()
    }

    /// See `drain_limit_ms`.
    pub(crate) fn drain_limit(&self) -> Option<std::time::Duration> {
        match self.drain_limit_ms.load(Ordering::Acquire) {
            0 => None,
            ms => Some(std::time::Duration::from_millis(ms)),
        }
    }

    fn lock_dirty_logs(&self) -> std::sync::MutexGuard<'_, Vec<Arc<ChannelLog>>> {
        self.dirty_logs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn client(&self, id: u64) -> Option<Arc<ClientShared>> {
        self.read_registry().clients.get(&id).cloned()
    }

    /// Queues the frames of one call for one client, under one mailbox lock, with one wakeup
    /// for the lot. A client asked to close takes nothing more: its writer may already have
    /// drained and ended the stream, so a later frame could never be written. Stops at an
    /// overflow (the client is cut, so the rest could never be sent).
    pub(crate) fn deliver(
        &self,
        client: &ClientShared,
        frames: impl Iterator<Item = Bytes>,
    ) -> Delivery {
        if client.close_requested().is_some() {
            return Delivery::Gone;
        }
        let mut delivery = Delivery::Queued;
        let mut pusher = client.queue.pusher();
        for frame in frames {
            let seq = self.sequence.take();
            let push = pusher.push(seq, frame);
            self.sequence.commit(seq);
            match push {
                Push::Overflow => {
                    drop(pusher);
                    self.close(client, CloseReason::Slow);
                    return Delivery::Gone;
                }
                Push::QueuedAboveHighWater => delivery = Delivery::AboveHighWater,
                push => self.count_drops(push),
            }
        }
        drop(pusher);
        client.wakeup.notify(DATA);
        delivery
    }

    fn count_drops(&self, push: Push) {
        if let Push::QueuedAfterDropping(n) = push {
            self.stats.add_dropped(n);
        }
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
