//! The backend's side of the hub: `HubHandle`, what a backend's tasks hold to feed the hub
//! the events it numbered (`apply_remote`), its floors and gaps, and to read the hub's state.
//! An event's position is the backend's number; the hub still stamps its own sequence number
//! on the entry, which only orders frames within this process (a client's mailbox against its
//! logs). Ids the hub makes are `{epoch}-{position}` with the backend's epoch, so a
//! `Last-Event-ID` from any process resumes here.

use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};

use crate::backend::{Backend, ID_LINE_MAX};
use crate::delivery_watch::WatchSpec;
use crate::frame::wants_hub_id;
use crate::hub::Hub;
use crate::resume::{ResetReason, Resume};
use crate::state::{HubState, NewEntry};
use crate::stats::Audience;

/// What a backend's tasks hold of the hub: they feed it and read its state.
#[derive(Clone)]
pub struct HubHandle(Arc<HubState>);

impl Hub {
    /// Routes `publish` and `broadcast` through `backend` from now on. Set once, before the
    /// first publish; later calls are ignored.
    pub fn set_backend(&self, backend: Arc<dyn Backend>) {
        let _ = self.inner().backend.set(backend);
    }

    pub fn handle(&self) -> HubHandle {
        HubHandle(self.inner().clone())
    }

    /// Runs `task` on the hub's runtime (the backend's connections live there). False once the
    /// hub has shut down.
    pub fn spawn<F>(&self, task: F) -> bool
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        match self.runtime() {
            Some(runtime) => {
                runtime.spawn(task);
                true
            }
            None => false,
        }
    }
}

/// One event as the backend hands it back (`HubHandle::apply_remote`).
#[derive(Debug, Clone, Copy)]
pub struct RemoteEvent<'a> {
    /// None: a broadcast.
    pub channel: Option<&'a str>,
    pub position: u64,
    pub epoch: u32,
    pub app_id: Option<&'a str>,
    /// The encoded frame, without the id line the hub makes.
    pub body: &'a [u8],
    /// How long ago the backend stored it.
    pub age: Duration,
    /// The trace context its publisher gave.
    pub trace: Option<&'a str>,
}

impl HubHandle {
    fn inner(&self) -> &HubState {
        &self.0
    }

    /// True once the hub was closed: the backend's tasks stop.
    pub fn is_closed(&self) -> bool {
        self.inner().closed.load(Ordering::Acquire)
    }

    /// Tells the embedder the backend went down or came back (`detail`: why, or where).
    pub fn report_backend(&self, up: bool, detail: &str) {
        self.inner().events.backend(up, detail);
    }

    /// Hands the embedder a signal from the backend's control channel.
    pub fn report_signal(&self, payload: &str) {
        self.inner().events.signal(payload);
    }

    /// Nothing below `position` is waiting any more: ids up to it are this hub's to resume
    /// (the backend had given them before this hub connected, or they were empty).
    pub fn advance_position(&self, position: u64) {
        self.inner()
            .remote_applied
            .fetch_max(position, Ordering::AcqRel);
    }

    /// The epoch the hub's ids carry (a backend's, once it set one).
    pub fn epoch(&self) -> u32 {
        self.inner().epoch.get()
    }

    /// Takes the backend's epoch, so ids made here match every other process's.
    pub fn set_epoch(&self, epoch: u32) {
        self.inner().epoch.set(epoch);
    }

    /// The highest position applied here: ids up to it are this hub's to resume.
    pub fn applied_position(&self) -> u64 {
        self.inner().remote_applied.load(Ordering::Acquire)
    }

    /// Channels that have a log here (subscribers, or history).
    pub fn channel_names(&self) -> Vec<Arc<str>> {
        self.inner()
            .read_registry()
            .channels
            .keys()
            .cloned()
            .collect()
    }

    /// Appends the event the backend numbered `position` (greater than any applied before) to
    /// the broadcast log or `channel`'s, stamped with an id made from `epoch` and the position
    /// unless the application gave one. `age`: how long ago the backend stored it. An event
    /// with a trace context is watched (delivery_watch.rs).
    pub fn apply_remote(&self, event: RemoteEvent<'_>) {
        let RemoteEvent {
            channel,
            position,
            epoch,
            app_id,
            body,
            age,
            trace,
        } = event;
        let inner = self.inner();
        if inner.closed.load(Ordering::Acquire) {
            return;
        }
        let audience = Audience::of(channel);
        if let Some((log, _)) = inner.log_of(channel) {
            let frame = match app_id {
                None if wants_hub_id(body) => {
                    let mut frame = BytesMut::with_capacity(ID_LINE_MAX + body.len());
                    // Into the frame directly: BytesMut is a fmt::Write with room reserved.
                    let _ = writeln!(frame, "id: {epoch:08x}-{position:x}");
                    frame.put_slice(body);
                    frame.freeze()
                }
                _ => Bytes::copy_from_slice(body),
            };
            let at = Instant::now().checked_sub(age).unwrap_or_else(Instant::now);
            let seq = inner.sequence.take();
            inner.append_entry(
                log,
                NewEntry {
                    seq,
                    position,
                    frame,
                    app_id,
                    at,
                    watch: trace.map(|trace| WatchSpec {
                        token: 0,
                        trace: Some(trace),
                    }),
                },
            );
        }
        inner.remote_applied.fetch_max(position, Ordering::AcqRel);
        inner.stats.add_published(audience, 1);
    }

    /// Nothing up to `position` is known to `channel`'s log (None: the broadcast log): a
    /// resume from before it gets the reset signal. A channel that keeps history gets its log
    /// now if it had none, so the floor is there when a client resumes.
    pub fn raise_floor(&self, channel: Option<&str>, position: u64) {
        let inner = self.inner();
        if let Some((log, _)) = inner.log_of(channel) {
            log.raise_floor(position);
        }
    }

    /// Sends the reset signal (reason `gap`) to every reader of `channel` (None: every
    /// client), after what they were sent so far; returns how many got it.
    pub fn reset_readers(&self, channel: Option<&str>) -> usize {
        let inner = self.inner();
        let Ok(frame) = inner.reset_frame(ResetReason::Gap) else {
            return 0;
        };
        let readers: Vec<_> = {
            let registry = inner.read_registry();
            match channel {
                None => registry.clients.values().cloned().collect(),
                Some(name) => registry
                    .channels
                    .get(name)
                    .map(|c| c.subscribers.values().cloned().collect())
                    .unwrap_or_default(),
            }
        };
        for client in &readers {
            inner.deliver(client, std::iter::once(frame.clone()));
            inner.stats.add_resume(Resume::Reset(ResetReason::Gap));
        }
        readers.len()
    }
}
