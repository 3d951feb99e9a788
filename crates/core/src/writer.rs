//! The writer task of one client, the same for every transport.
//!
//! It multiplexes, with no JS involved: filling a batch from the client's mailbox and logs,
//! writing it through the transport's sink, a heartbeat when the stream has been idle, a write
//! deadline while the sink accepts nothing, the close requests of the hub, and whatever the
//! sink can tell of its peer (a socket sees FIN and RST). A single timer serves both
//! deadlines: they never apply together (heartbeats only when nothing is pending, the write
//! deadline only while something is).
//!
//! Transports differ only in their sink: a socket the runtime owns (`socket_sink`), or Node
//! writing to a response on the JS thread (`relay_sink`).
//!
//! A writer whose sink can be watched without it (a socket: the runtime's I/O driver reports
//! its peer's FIN) ends its task when it goes idle and parks in the client's `Wakeup`, so an
//! idle client costs no task; the hub's heartbeat task resumes it when its heartbeat is due.

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::io;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Wake, Waker};

use bytes::Bytes;
use tokio::time::{sleep_until, Duration, Instant};

use crate::batch::{Batch, Progress};
use crate::client::ClientShared;
use crate::close::CloseReason;
use crate::feed::Feed;
use crate::frame::HEARTBEAT;
use crate::gzip::GzipStream;
use crate::peer_progress::PeerProgress;
use crate::socket::SocketFd;
use crate::state::HubState;
use crate::stats::Stats;
use crate::wakeup::{Resumable, CLOSING, DATA};

/// How long a writer stays in its task after it last wrote an event (heartbeats and a fresh
/// writer's opening batch do not count). A stream's events rarely come a second apart, so a
/// writer in a stream keeps its task (and waking it allocates nothing); one idle past this
/// parks, and waking it allocates its task again: once per idle spell, never per event.
const PARK_AFTER: Duration = Duration::from_secs(1);

thread_local! {
    /// Batches a writer may still write on this thread, while `start` polls it where its
    /// socket was adopted (None everywhere else).
    static WRITES_IN_PLACE: Cell<Option<u32>> = const { Cell::new(None) };
}

/// Whether the writer must move to the runtime before its next write: one polled in place
/// writes its opening batch there and no more (a long replay is the runtime's work, not the
/// adopting thread's). None when it is not in place (in a task), which it then never is again.
fn must_leave_place() -> Option<bool> {
    WRITES_IN_PLACE.with(|left| match left.get() {
        None => None,
        Some(0) => Some(true),
        Some(n) => {
            left.set(Some(n - 1));
            Some(false)
        }
    })
}

/// Starts a writer. One whose sink parks is first polled right here, on the thread that
/// adopted its socket: a fresh client writes its opening batch and parks, so in a reconnect
/// wave most connections never wake a runtime thread (on a small machine, a thread switch
/// per connection was a tenth of the accept cost); only one that still has work after its
/// opening becomes a task.
pub(crate) fn start<S: Sink + Send + 'static>(
    runtime: &tokio::runtime::Runtime,
    guard: FinishGuard,
    sink: S,
    client: Arc<ClientShared>,
) {
    let gzip = client.is_gzip().then(|| Box::new(GzipStream::new()));
    if !sink.parks() {
        // The task is this one future, sized by `run`: a wrapping `async` block would keep a
        // second copy of the writer's state in every connection's task.
        runtime.spawn(write_client(guard, sink, client, gzip, None));
        return;
    }
    // The writer's timer and its socket belong to this runtime's drivers.
    let _context = runtime.enter();
    let mut writer = Box::pin(write_client(guard, sink, client, gzip, None));
    WRITES_IN_PLACE.with(|left| left.set(Some(1)));
    // Whatever wakes this first poll is moot: the task polls again as it starts.
    let done = writer
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
        .is_ready();
    WRITES_IN_PLACE.with(|left| left.set(None));
    if !done {
        runtime.spawn(writer);
    }
}

/// Where a client's bytes go.
pub(crate) trait Sink {
    /// A new, empty batch in the framing this sink needs.
    fn batch(&self) -> Batch;
    /// Writes what it can of `batch` now. `Done` leaves the batch empty and its frames the
    /// writer's to commit; `Blocked` says how many bytes went before it blocked.
    /// Bytes it hands on itself (rather than reporting them in `Progress`) go to `tally`.
    fn write(&mut self, batch: &mut Batch, tally: &Tally<'_>) -> io::Result<Progress>;
    /// Ready once a blocked batch may make progress.
    fn poll_writable(
        &mut self,
        cx: &mut Context<'_>,
        client: &ClientShared,
    ) -> Poll<io::Result<()>>;
    /// Ready with the reason once the peer is gone, for sinks that can see it.
    fn poll_gone(&mut self, cx: &mut Context<'_>) -> Poll<CloseReason>;
    /// Ends the stream cleanly once everything was written; returns the bytes it wrote.
    fn finish(&mut self, limit: Duration) -> impl Future<Output = io::Result<usize>> + Send;
    /// Ends the stream at once (the client is cut: slow, timeout, a drain that cannot finish).
    fn cut(&mut self);
    /// The TCP socket under the stream, to see whether its peer still acknowledges bytes.
    fn socket_fd(&self) -> Option<SocketFd>;
    /// Whether an idle writer of this sink may end its task and be resumed later: only when
    /// `poll_parked` can see, without the task, whatever `poll_gone` would.
    fn parks(&self) -> bool {
        false
    }
    /// Registers `cx` to be woken by what `poll_gone` looks for. Ready when something is
    /// there already: the writer then waits in its task rather than parking.
    fn poll_parked(&mut self, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Ready(())
    }
}

/// Counts what a writer wrote, for the hub's counters and for its own client's.
pub(crate) struct Tally<'a> {
    stats: &'a Stats,
    client: &'a ClientShared,
}

impl<'a> Tally<'a> {
    /// Made at each use rather than held: it would take room in every idle connection's task.
    fn new(stats: &'a Stats, client: &'a ClientShared) -> Self {
        Tally { stats, client }
    }

    pub fn written(&self, bytes: usize, events: u64) {
        self.stats.add_written(bytes, events);
        self.client.add_delivered(bytes, events);
    }

    /// The client written to.
    pub fn client(&self) -> &ClientShared {
        self.client
    }
}

/// How a run of the writer ended.
enum Ran {
    Ended(CloseReason),
    /// Idle since its last write: nothing pending, no close asked, no heartbeat due yet.
    Idle(Instant),
}

/// Why a wait ended.
enum Woken {
    Closing,
    Writable(io::Result<()>),
    Data,
    Gone(CloseReason),
    Timer,
}

/// Runs until the stream ends (and says why) or, where the sink parks, goes idle.
/// `last_write` carries a parked writer's over to its next run; `may_park` is false for a run
/// that must wait in its task first (its sink had something to say as it parked).
async fn run<S: Sink>(
    sink: &mut S,
    client: &ClientShared,
    hub: &HubState,
    gzip: &mut Option<Box<GzipStream>>,
    last_write: Option<Instant>,
    may_park: bool,
) -> Ran {
    let mut batch = sink.batch();
    let mut feed = Feed::default();
    let reason = match write_loop(
        sink, client, hub, &mut batch, &mut feed, gzip, last_write, may_park,
    )
    .await
    {
        // Nothing is taken or pending when idle: there is nothing to give back.
        Ran::Idle(at) => return Ran::Idle(at),
        Ran::Ended(reason) => reason,
    };
    let (reason, cut) = match reason {
        // The server asked for this close: a drain that timed out (our deadline, or the
        // kernel's TCP_USER_TIMEOUT) still ends as the server's close, cut.
        CloseReason::Timeout if client.close_requested() == Some(CloseReason::Server) => {
            (CloseReason::Server, true)
        }
        other => (
            other,
            matches!(other, CloseReason::Slow | CloseReason::Timeout),
        ),
    };
    feed.abandon(client);
    batch.discard();
    if cut {
        sink.cut();
    }
    Ran::Ended(reason)
}

#[allow(clippy::too_many_arguments)]
async fn write_loop<S: Sink>(
    sink: &mut S,
    client: &ClientShared,
    hub: &HubState,
    batch: &mut Batch,
    feed: &mut Feed,
    gzip: &mut Option<Box<GzipStream>>,
    last_write: Option<Instant>,
    mut may_park: bool,
) -> Ran {
    let config = &hub.config;
    let stats = &*hub.stats;
    // Active means it wrote an event (not a heartbeat) within PARK_AFTER: a resumed writer
    // wrote nothing but heartbeats since it parked, and a fresh one's first batch (its opening,
    // and whatever was queued with it) does not count either, so a client that connects and
    // then waits parks as soon as that is written. A connect burst then never holds a task per
    // connection: each is freed before the next few connections are adopted, and the
    // allocator reuses its memory rather than keeping thousands of task-sized holes between
    // the clients' long-lived state.
    let mut active_at: Option<Instant> = None;
    let mut opening = last_write.is_none();
    // Only a fresh writer can be running in place; one known to be in a task stops asking.
    let mut maybe_in_place = opening;
    let mut last_write = last_write.unwrap_or_else(Instant::now);
    let mut heartbeat_in_batch = false;
    let mut blocked_since: Option<Instant> = None;
    // Set when a server-requested close is first seen, from the hub's drain limit.
    let mut drain_deadline: Option<Instant> = None;
    let mut peer = PeerProgress::new(sink.socket_fd());
    let heartbeat = client.heartbeat(config.heartbeat);
    let timer = sleep_until(last_write + heartbeat);
    tokio::pin!(timer);

    loop {
        let draining = match client.close_requested() {
            None => false,
            Some(CloseReason::Server) => true,
            Some(other) => return Ran::Ended(other),
        };
        if draining && drain_deadline.is_none() {
            drain_deadline = hub.drain_limit().map(|limit| Instant::now() + limit);
        }

        if batch.is_empty() {
            let horizon = client.horizon(hub.sequence.committed());
            let filled = feed.fill(
                client,
                horizon,
                config.overflow,
                batch.frames_mut(),
                gzip.as_deref_mut(),
            );
            match filled {
                Ok(dropped) => stats.add_dropped(dropped),
                Err(_lagged) => return Ran::Ended(CloseReason::Slow),
            }
            if let Some(gzip) = gzip.as_deref_mut() {
                let (plain, wire) = gzip.take_counts();
                stats.add_gzip(plain, wire);
            }
            batch.seal_frames();
        }
        if !batch.is_empty() {
            if maybe_in_place {
                match must_leave_place() {
                    None => maybe_in_place = false,
                    Some(true) => tokio::task::yield_now().await,
                    Some(false) => {}
                }
            }
            match sink.write(batch, &Tally::new(stats, client)) {
                Ok(Progress::Done { bytes }) => {
                    let committed = feed.commit(client);
                    if committed.drained {
                        hub.events.drained(client.id);
                    }
                    Tally::new(stats, client).written(bytes, committed.events);
                    last_write = Instant::now();
                    let counts = !std::mem::take(&mut heartbeat_in_batch);
                    if counts && !std::mem::take(&mut opening) {
                        active_at = Some(last_write);
                    }
                    blocked_since = None;
                    // Writes that never block never yield on their own: without this, a client
                    // whose queue is refilled as fast as its sink drains would keep the worker
                    // thread from every other connection.
                    tokio::task::consume_budget().await;
                    // More may have been queued meanwhile; take it before sleeping.
                    continue;
                }
                Ok(Progress::Blocked { bytes }) => {
                    Tally::new(stats, client).written(bytes, 0);
                    if bytes > 0 || blocked_since.is_none() {
                        blocked_since = Some(Instant::now());
                        peer.mark();
                    }
                }
                Err(e) => return Ran::Ended(classify(&e)),
            }
        }

        let pending = !batch.is_empty();
        if draining && !pending {
            // A gzip stream ends with its trailer, written as the last batch; counted with the
            // next fill's (it comes before the sink finishes), as heartbeats are.
            if let Some(end) = gzip.as_deref_mut().and_then(GzipStream::finish) {
                batch.set_single(end);
                continue;
            }
            let limit = drain_deadline.map_or(config.write_timeout, |deadline| {
                config
                    .write_timeout
                    .min(deadline.saturating_duration_since(Instant::now()))
            });
            // Boxed: it runs once per connection, and its state would otherwise take room in
            // every idle connection's task.
            if let Ok(bytes) = Box::pin(sink.finish(limit)).await {
                Tally::new(stats, client).written(bytes, 0);
            }
            return Ran::Ended(CloseReason::Server);
        }
        // The one place a heartbeat is queued: when the timer fired for it, or already due as
        // the turn began (a parked writer resumed for it: no timer round trip). A draining
        // writer with nothing pending has ended above.
        if !pending && Instant::now() >= last_write + heartbeat {
            heartbeat_in_batch = true;
            batch.set_single(match gzip.as_deref_mut() {
                Some(gzip) => gzip.heartbeat(),
                None => Bytes::from_static(HEARTBEAT),
            });
            stats.add_heartbeat();
            continue;
        }
        let mut deadline = match blocked_since {
            Some(since) if pending => since + config.write_timeout,
            _ => last_write + heartbeat,
        };
        if let Some(drain_deadline) = drain_deadline {
            deadline = deadline.min(drain_deadline);
        }
        if may_park
            && !pending
            && !draining
            && drain_deadline.is_none()
            && sink.parks()
            && deadline > Instant::now()
        {
            match active_at.map(|at| at + PARK_AFTER) {
                Some(park_at) if park_at > Instant::now() => deadline = deadline.min(park_at),
                _ => return Ran::Idle(last_write),
            }
        }
        may_park = true;
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }

        let woken = poll_fn(|cx| {
            let wakeup = &client.wakeup;
            wakeup.register(cx.waker());
            if wakeup.take(CLOSING) {
                return Poll::Ready(Woken::Closing);
            }
            if pending {
                if let Poll::Ready(result) = sink.poll_writable(cx, client) {
                    return Poll::Ready(Woken::Writable(result));
                }
            }
            if wakeup.take(DATA) {
                return Poll::Ready(Woken::Data);
            }
            if let Poll::Ready(reason) = sink.poll_gone(cx) {
                return Poll::Ready(Woken::Gone(reason));
            }
            timer.as_mut().poll(cx).map(|()| Woken::Timer)
        })
        .await;

        match woken {
            Woken::Closing => {}
            Woken::Writable(Ok(())) => {}
            Woken::Writable(Err(e)) => return Ran::Ended(classify(&e)),
            Woken::Data => {
                // Blocked, lagging out of a log's window is dealt with now rather than
                // whenever the sink takes bytes again.
                if pending {
                    match feed.check_lag(client, config.overflow) {
                        Ok(dropped) => stats.add_dropped(dropped),
                        Err(_lagged) => return Ran::Ended(CloseReason::Slow),
                    }
                }
            }
            Woken::Gone(reason) => return Ran::Ended(reason),
            // The drain had its time: the close is the server's, cut (see `run`).
            Woken::Timer if drain_deadline.is_some_and(|d| Instant::now() >= d) => {
                return Ran::Ended(CloseReason::Timeout);
            }
            Woken::Timer if pending => {
                if peer.advanced() {
                    // Still reading, only slowly: the deadline starts again.
                    blocked_since = Some(Instant::now());
                    stats.add_deadline_extended();
                    continue;
                }
                return Ran::Ended(CloseReason::Timeout);
            }
            // Its heartbeat (queued as the next turn begins) or its time to park.
            Woken::Timer => {}
        }
    }
}

/// A peer that reset the connection (RST: a reset, an abort, a broken pipe on our next write)
/// has left, as one that sent FIN has (`client`); the write deadline, ours or the kernel's
/// `TCP_USER_TIMEOUT`, is `timeout`; any other socket error is a failure on our side (`error`).
pub(crate) fn classify(error: &io::Error) -> CloseReason {
    match error.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => CloseReason::Client,
        io::ErrorKind::TimedOut => CloseReason::Timeout,
        _ => CloseReason::Error,
    }
}

/// One client's writer task: runs the writer over `sink`, then reports the close; or, idle,
/// parks it (see the module's doc) and ends without reporting anything. The guard comes
/// first so that, should the writer panic, it is dropped last (parameters drop in reverse
/// order), after the sink released its socket.
pub(crate) async fn write_client<S: Sink + Send + 'static>(
    mut guard: FinishGuard,
    mut sink: S,
    client: Arc<ClientShared>,
    mut gzip: Option<Box<GzipStream>>,
    mut last_write: Option<Instant>,
) {
    let hub = guard.hub.clone();
    let mut may_park = true;
    loop {
        let idle_since = match run(&mut sink, &client, &hub, &mut gzip, last_write, may_park).await
        {
            Ran::Ended(reason) => {
                guard.reason = Some(reason);
                break;
            }
            Ran::Idle(at) => at,
        };
        last_write = Some(idle_since);
        // Its peer's FIN (or bytes) must resume it: the I/O driver wakes this waker.
        let waker = Waker::from(Arc::new(ResumeOnWake(Arc::downgrade(&client))));
        if sink
            .poll_parked(&mut Context::from_waker(&waker))
            .is_ready()
        {
            may_park = false;
            continue;
        }
        let parked = Box::new(Parked {
            guard,
            sink,
            client: client.clone(),
            gzip,
            last_write: idle_since,
        });
        let heartbeats = &hub.heartbeats;
        let period = client.heartbeat(hub.config.heartbeat);
        match client
            .wakeup
            .park(parked, |at| heartbeats.push(at + period, client.id))
        {
            Ok(()) => return,
            // Something came meanwhile: run again, and wait in the task once, which takes
            // the wakeup (a writer that parked at once would find it again, and spin).
            Err(parked) => {
                may_park = false;
                let Parked {
                    guard: kept_guard,
                    sink: kept_sink,
                    gzip: kept_gzip,
                    ..
                } = *parked;
                guard = kept_guard;
                sink = kept_sink;
                gzip = kept_gzip;
            }
        }
    }
    // The sink (and a socket's descriptor) goes before the close is reported, so an
    // embedder counting descriptors after `closed` sees it released.
    drop(sink);
}

/// An idle writer's state between its tasks: all a run needs to go on where it stopped (an
/// idle writer has no batch, nothing taken, no deadline but the heartbeat).
struct Parked<S> {
    guard: FinishGuard,
    sink: S,
    client: Arc<ClientShared>,
    /// Where its gzip stream stands (gzip.rs), if it is one.
    gzip: Option<Box<GzipStream>>,
    last_write: Instant,
}

impl<S: Sink + Send + 'static> Resumable for Parked<S> {
    fn last_write(&self) -> Instant {
        self.last_write
    }

    fn resume(self: Box<Self>) {
        let Parked {
            guard,
            sink,
            client,
            gzip,
            last_write,
        } = *self;
        // A runtime already shut down drops the task at once, and its guard reports the close.
        let runtime = guard.hub.runtime.clone();
        runtime.spawn(write_client(guard, sink, client, gzip, Some(last_write)));
    }
}

/// Wakes a parked writer from the I/O driver: weak, so a socket's registration never keeps
/// its client alive.
struct ResumeOnWake(Weak<ClientShared>);

impl Wake for ResumeOnWake {
    fn wake(self: Arc<Self>) {
        if let Some(client) = self.0.upgrade() {
            client.wakeup.notify(DATA);
        }
    }
}

/// Reports the end of a writer task exactly once, including when the task panics or is
/// dropped by a runtime shutdown before it could report.
pub(crate) struct FinishGuard {
    pub hub: Arc<HubState>,
    pub id: u64,
    pub reason: Option<CloseReason>,
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
