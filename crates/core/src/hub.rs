//! The hub: client registry, fan-out, and the runtime that runs the writer tasks.
//!
//! Producers (the JS thread) only touch the registry under a read lock and push refcounted
//! frames into per-client queues; everything that blocks or waits happens on the runtime's
//! threads. A client's end is reported through `HubEvents::closed` exactly once: either by its
//! writer task's drop guard (even on panic or runtime shutdown), or directly when it closes
//! before its transport was started.
//!
//! Channels are a second index over the same clients: `publish(channel)` walks only the
//! subscribers of that channel, `broadcast` walks everyone.

use std::collections::HashMap;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use tokio::runtime::Runtime;

use crate::client::{ClientShared, Phase};
use crate::close::CloseReason;
use crate::config::HubConfig;
use crate::connection::{serve, ConnectionSettings};
use crate::error::SseError;
use crate::events::HubEvents;
use crate::frame::{encode_comment, opening_frame, Message};
use crate::node_connection::{serve_node, NodeSettings};
use crate::queue::{ClientQueue, Push};
use crate::socket::adopt_fd;
use crate::stats::{Stats, StatsSnapshot};

pub struct Hub {
    inner: Arc<HubInner>,
    runtime: Option<Runtime>,
}

struct HubInner {
    config: HubConfig,
    registry: RwLock<Registry>,
    next_id: AtomicU64,
    closed: AtomicBool,
    stats: Arc<Stats>,
    events: Box<dyn HubEvents>,
}

type ClientMap = HashMap<u64, Arc<ClientShared>>;

#[derive(Default)]
struct Registry {
    clients: ClientMap,
    channels: HashMap<Arc<str>, ClientMap>,
}

/// Per-client queue levels, summed over the hub.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueLevels {
    pub clients: usize,
    pub queued_events: usize,
    pub queued_bytes: usize,
    /// The largest byte level of any one client: the figure the per-client bound applies to.
    pub max_client_bytes: usize,
}

impl Hub {
    pub fn new(config: HubConfig, events: Box<dyn HubEvents>) -> io::Result<Hub> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.worker_threads)
            .thread_name("native-sse")
            .enable_io()
            .enable_time()
            .build()?;
        Ok(Hub {
            inner: Arc::new(HubInner {
                config,
                registry: RwLock::new(Registry::default()),
                next_id: AtomicU64::new(1),
                closed: AtomicBool::new(false),
                stats: Arc::new(Stats::default()),
                events,
            }),
            runtime: Some(runtime),
        })
    }

    pub fn config(&self) -> &HubConfig {
        &self.inner.config
    }

    /// Registers a client whose transport starts later (`adopt` or `start_node`), subscribed
    /// to `channels`. Its opening frame (`retry`, or a comment) is queued first, so the first
    /// body bytes leave as soon as the transport starts and precede anything published later.
    pub fn register(&self, retry: Option<u64>, channels: Vec<String>) -> Result<u64, SseError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(SseError::HubClosed);
        }
        crate::test_hooks::on_register(&channels);
        let config = &self.inner.config;
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let queue = ClientQueue::new(
            config.max_queue_events,
            config.max_queue_bytes,
            config.overflow,
        );
        queue.push(opening_frame(retry));
        let channels: Box<[Arc<str>]> = channels.into_iter().map(Arc::from).collect();
        let client = Arc::new(ClientShared::new(id, queue, channels));
        let mut registry = self.inner.write_registry();
        for channel in client.channels.iter() {
            registry
                .channels
                .entry(channel.clone())
                .or_default()
                .insert(id, client.clone());
        }
        registry.clients.insert(id, client);
        drop(registry);
        self.inner.stats.add_attached();
        Ok(id)
    }

    /// Takes over the connected socket `fd` (the caller keeps and later closes its own fd)
    /// and starts the client's writer task. `release_fd` runs once every check has passed and
    /// the socket is ours, just before the writer starts: the embedder drops its own poller
    /// registration there, so a failed adoption leaves the embedder's socket untouched.
    pub fn adopt(
        &self,
        id: u64,
        fd: RawFd,
        chunked: bool,
        release_fd: impl FnOnce(RawFd),
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
        let std_stream = adopt_fd(fd, self.inner.config.write_timeout).map_err(adopt_error)?;
        let stream = {
            let _context = runtime.enter();
            tokio::net::TcpStream::from_std(std_stream).map_err(adopt_error)?
        };
        release_fd(fd);
        if !client.advance(Phase::Pending, Phase::Running) {
            // Closed while the head was flushing; dropping `stream` closes our duplicate.
            return Err(SseError::UnknownClient { id });
        }
        let settings = ConnectionSettings {
            heartbeat: self.inner.config.heartbeat,
            write_timeout: self.inner.config.write_timeout,
            chunked,
        };
        let stats = self.inner.stats.clone();
        self.spawn_writer(runtime, id, serve(stream, client, settings, stats));
        Ok(())
    }

    /// Starts serving client `id` through its embedder (`HubEvents::write`), for connections
    /// whose socket cannot be adopted. `socket_fd`, where known, is the TCP socket under the
    /// response, only ever looked at to see whether the peer still reads.
    pub fn start_node(&self, id: u64, socket_fd: Option<RawFd>) -> Result<(), SseError> {
        let client = self
            .inner
            .client(id)
            .ok_or(SseError::UnknownClient { id })?;
        let runtime = self.runtime.as_ref().ok_or(SseError::HubClosed)?;
        if !client.advance(Phase::Pending, Phase::Running) {
            return Err(SseError::UnknownClient { id });
        }
        let settings = NodeSettings {
            heartbeat: self.inner.config.heartbeat,
            write_timeout: self.inner.config.write_timeout,
            socket_fd,
        };
        let stats = self.inner.stats.clone();
        let hub = self.inner.clone();
        let writer = async move { serve_node(client, settings, stats, hub.events.as_ref()).await };
        self.spawn_writer(runtime, id, writer);
        Ok(())
    }

    /// Runs a client's writer task; its end (or its panic, or the runtime dropping it) is
    /// reported exactly once through the guard.
    fn spawn_writer(
        &self,
        runtime: &Runtime,
        id: u64,
        writer: impl std::future::Future<Output = CloseReason> + Send + 'static,
    ) {
        let guard = FinishGuard {
            hub: self.inner.clone(),
            id,
            reason: None,
        };
        runtime.spawn(async move {
            // Moves the whole guard into the task (a field assignment alone would capture only
            // that field and drop the guard, reporting the close, right here).
            let mut guard = guard;
            guard.reason = Some(writer.await);
        });
    }

    /// Node transport: the client's last batch was written and its response accepts more.
    pub fn node_writable(&self, id: u64) -> bool {
        match self.inner.client(id) {
            Some(client) => {
                client.writable.notify_one();
                true
            }
            None => false,
        }
    }

    /// Queues one message for one client. Returns false if the client is gone.
    pub fn send(&self, id: u64, message: &Message<'_>) -> Result<bool, SseError> {
        let frame = self.encode(message)?;
        Ok(self.send_frame(id, frame))
    }

    pub fn comment(&self, id: u64, text: &str) -> Result<bool, SseError> {
        let frame = self.encode_comment(text)?;
        Ok(self.send_frame(id, frame))
    }

    /// Encodes once and queues the same frame for every client. Returns how many clients it
    /// was queued for.
    pub fn broadcast(&self, message: &Message<'_>) -> Result<usize, SseError> {
        let frame = self.encode(message)?;
        Ok(self.fan_out(None, &frame))
    }

    /// Encodes once and queues the frame for the subscribers of `channel`.
    pub fn publish(&self, channel: &str, message: &Message<'_>) -> Result<usize, SseError> {
        let frame = self.encode(message)?;
        Ok(self.fan_out(Some(channel), &frame))
    }

    pub fn broadcast_comment(&self, text: &str) -> Result<usize, SseError> {
        crate::test_hooks::on_hub_comment(text);
        let frame = self.encode_comment(text)?;
        Ok(self.fan_out(None, &frame))
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
        let clients: Vec<_> = self
            .inner
            .read_registry()
            .clients
            .values()
            .cloned()
            .collect();
        for client in clients {
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
            .map_or(0, HashMap::len)
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
            let bytes = client.queue.queued_bytes();
            levels.queued_events += client.queue.queued_events();
            levels.queued_bytes += bytes;
            levels.max_client_bytes = levels.max_client_bytes.max(bytes);
        }
        levels
    }

    fn encode(&self, message: &Message<'_>) -> Result<Bytes, SseError> {
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

    fn send_frame(&self, id: u64, frame: Bytes) -> bool {
        if self.inner.closed.load(Ordering::Acquire) {
            return false;
        }
        match self.inner.client(id) {
            Some(client) => self.inner.deliver(&client, frame),
            None => false,
        }
    }

    /// Queues `frame` for every client, or for the subscribers of `channel`.
    fn fan_out(&self, channel: Option<&str>, frame: &Bytes) -> usize {
        if self.inner.closed.load(Ordering::Acquire) {
            return 0;
        }
        let mut delivered = 0;
        let mut overflowed = Vec::new();
        {
            let registry = self.inner.read_registry();
            let clients = match channel {
                None => &registry.clients,
                Some(name) => match registry.channels.get(name) {
                    Some(subscribers) => subscribers,
                    None => return 0,
                },
            };
            for client in clients.values() {
                if client.close_requested().is_some() {
                    continue;
                }
                match client.queue.push(frame.clone()) {
                    Push::Overflow => overflowed.push(client.clone()),
                    push => {
                        self.inner.count_drops(push);
                        client.wake.notify_one();
                        delivered += 1;
                    }
                }
            }
        }
        // Outside the read lock: closing a pending client removes it from the registry.
        for client in overflowed {
            self.inner.close(&client, CloseReason::Slow);
        }
        delivered
    }
}

impl HubInner {
    fn read_registry(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        // A poisoned lock only means a panic elsewhere while holding it; the maps themselves
        // are still consistent (no code path panics between the paired updates).
        self.registry.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_registry(&self) -> std::sync::RwLockWriteGuard<'_, Registry> {
        self.registry.write().unwrap_or_else(|e| e.into_inner())
    }

    fn client(&self, id: u64) -> Option<Arc<ClientShared>> {
        self.read_registry().clients.get(&id).cloned()
    }

    /// Queues for one client. A client asked to close takes nothing more: its writer may
    /// already have drained and ended the stream, so a later frame could never be written.
    fn deliver(&self, client: &ClientShared, frame: Bytes) -> bool {
        if client.close_requested().is_some() {
            return false;
        }
        match client.queue.push(frame) {
            Push::Overflow => {
                self.close(client, CloseReason::Slow);
                false
            }
            push => {
                self.count_drops(push);
                client.wake.notify_one();
                true
            }
        }
    }

    fn count_drops(&self, push: Push) {
        if let Push::QueuedAfterDropping(n) = push {
            self.stats.add_dropped(n);
        }
    }

    fn close(&self, client: &ClientShared, reason: CloseReason) {
        if client.advance(Phase::Pending, Phase::Done) {
            self.finish(client.id, reason);
        } else {
            client.request_close(reason);
        }
    }

    fn finish(&self, id: u64, reason: CloseReason) {
        let removed = {
            let mut registry = self.write_registry();
            let removed = registry.clients.remove(&id);
            if let Some(client) = &removed {
                for channel in client.channels.iter() {
                    if let Some(subscribers) = registry.channels.get_mut(channel) {
                        subscribers.remove(&id);
                        if subscribers.is_empty() {
                            registry.channels.remove(channel);
                        }
                    }
                }
            }
            removed
        };
        if let Some(client) = removed {
            client.mark_done();
            self.stats.add_closed(reason);
            self.events.closed(id, reason);
        }
    }
}

/// Reports the end of a writer task exactly once, including when the task panics or is
/// dropped by a runtime shutdown before it could report.
struct FinishGuard {
    hub: Arc<HubInner>,
    id: u64,
    reason: Option<CloseReason>,
}

impl Drop for FinishGuard {
    fn drop(&mut self) {
        let reason = self.reason.unwrap_or(if std::thread::panicking() {
            CloseReason::Error
        } else {
            CloseReason::Server
        });
        self.hub.finish(self.id, reason);
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
