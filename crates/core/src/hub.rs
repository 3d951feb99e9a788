//! The hub: client registry, fan-out, and the runtime that runs the writer tasks.
//!
//! Producers (the JS thread) only touch the registry under a read lock and push refcounted
//! frames into per-client queues; everything that blocks or waits happens on the runtime's
//! threads. A client's end is reported through `on_close` exactly once: either by its writer
//! task's drop guard (even on panic or runtime shutdown), or directly when it closes before
//! its socket was ever adopted.

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
use crate::frame::{encode_comment, Message};
use crate::queue::{ClientQueue, Push};
use crate::socket::adopt_fd;
use crate::stats::{Stats, StatsSnapshot};

pub type CloseCallback = Box<dyn Fn(u64, CloseReason) + Send + Sync>;

pub struct Hub {
    inner: Arc<HubInner>,
    runtime: Option<Runtime>,
}

struct HubInner {
    config: HubConfig,
    clients: RwLock<HashMap<u64, Arc<ClientShared>>>,
    next_id: AtomicU64,
    closed: AtomicBool,
    stats: Arc<Stats>,
    on_close: CloseCallback,
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
    pub fn new(config: HubConfig, on_close: CloseCallback) -> io::Result<Hub> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.worker_threads)
            .thread_name("native-sse")
            .enable_io()
            .enable_time()
            .build()?;
        Ok(Hub {
            inner: Arc::new(HubInner {
                config,
                clients: RwLock::new(HashMap::new()),
                next_id: AtomicU64::new(1),
                closed: AtomicBool::new(false),
                stats: Arc::new(Stats::default()),
                on_close,
            }),
            runtime: Some(runtime),
        })
    }

    pub fn config(&self) -> &HubConfig {
        &self.inner.config
    }

    /// Registers a client whose socket will be adopted later. `initial` frames (e.g. `retry`)
    /// are queued first so they precede anything published after registration.
    pub fn register(&self, initial: Option<Bytes>) -> Result<u64, SseError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(SseError::HubClosed);
        }
        let config = &self.inner.config;
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let queue = ClientQueue::new(
            config.max_queue_events,
            config.max_queue_bytes,
            config.overflow,
        );
        if let Some(frame) = initial {
            queue.push(frame);
        }
        let client = Arc::new(ClientShared::new(id, queue));
        self.inner.write_clients().insert(id, client);
        self.inner.stats.add_attached();
        Ok(id)
    }

    /// Takes over the connected socket `fd` (the caller keeps and later closes its own fd)
    /// and starts the client's writer task.
    pub fn adopt(&self, id: u64, fd: RawFd, chunked: bool) -> Result<(), SseError> {
        let client = self
            .inner
            .client(id)
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
        if !client.advance(Phase::Pending, Phase::Running) {
            // Closed while the head was flushing; dropping `stream` closes our duplicate.
            return Err(SseError::UnknownClient { id });
        }
        let settings = ConnectionSettings {
            heartbeat: self.inner.config.heartbeat,
            write_timeout: self.inner.config.write_timeout,
            chunked,
        };
        let guard = FinishGuard {
            hub: self.inner.clone(),
            id,
            reason: None,
        };
        let stats = self.inner.stats.clone();
        runtime.spawn(async move {
            // Moves the whole guard into the task (a field assignment alone would capture only
            // that field and drop the guard, reporting the close, right here).
            let mut guard = guard;
            guard.reason = Some(serve(stream, client, settings, stats).await);
        });
        Ok(())
    }

    /// Queues one message for one client. Returns false if the client is gone.
    pub fn send(&self, id: u64, message: &Message<'_>) -> Result<bool, SseError> {
        let frame = self.encode(message)?;
        Ok(self.send_frame(id, frame))
    }

    pub fn comment(&self, id: u64, text: &str) -> Result<bool, SseError> {
        let frame = encode_comment(text);
        self.check_size(frame.len())?;
        Ok(self.send_frame(id, frame))
    }

    /// Encodes once and queues the same frame for every client. Returns how many clients it
    /// was queued for.
    pub fn broadcast(&self, message: &Message<'_>) -> Result<usize, SseError> {
        let frame = self.encode(message)?;
        Ok(self.broadcast_frame(&frame))
    }

    pub fn broadcast_comment(&self, text: &str) -> Result<usize, SseError> {
        let frame = encode_comment(text);
        self.check_size(frame.len())?;
        Ok(self.broadcast_frame(&frame))
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
        let clients: Vec<_> = self.inner.read_clients().values().cloned().collect();
        for client in clients {
            self.inner.close(&client, CloseReason::Server);
        }
    }

    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    pub fn size(&self) -> usize {
        self.inner.read_clients().len()
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.inner.stats.snapshot()
    }

    pub fn queue_levels(&self) -> QueueLevels {
        let clients = self.inner.read_clients();
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

    fn check_size(&self, size: usize) -> Result<(), SseError> {
        let limit = self.inner.config.max_queue_bytes;
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

    fn broadcast_frame(&self, frame: &Bytes) -> usize {
        if self.inner.closed.load(Ordering::Acquire) {
            return 0;
        }
        let mut delivered = 0;
        let mut overflowed = Vec::new();
        {
            let clients = self.inner.read_clients();
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
    fn read_clients(&self) -> std::sync::RwLockReadGuard<'_, HashMap<u64, Arc<ClientShared>>> {
        // A poisoned lock only means a panic elsewhere while holding it; the map itself is
        // still consistent (inserts and removes are single operations).
        self.clients.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_clients(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<u64, Arc<ClientShared>>> {
        self.clients.write().unwrap_or_else(|e| e.into_inner())
    }

    fn client(&self, id: u64) -> Option<Arc<ClientShared>> {
        self.read_clients().get(&id).cloned()
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
        let removed = self.write_clients().remove(&id);
        if let Some(client) = removed {
            client.mark_done();
            self.stats.add_closed(reason);
            (self.on_close)(id, reason);
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
