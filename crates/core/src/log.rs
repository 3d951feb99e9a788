//! An append-only log of encoded frames: one per channel, plus the hub's broadcast log.
//!
//! Publishing encodes once and appends here: O(1) on the publishing thread, whatever the
//! audience. Each subscribed client reads the log through a cursor (an offset into it), so a
//! client that is behind costs a position, not a copy of the frames. What a log keeps is
//! bounded by its window (events and bytes from the head): memory is bounded per log, not per
//! client. A cursor that falls behind the window has lagged out, and the client's overflow
//! policy applies (cut as `slow`, or skip ahead with the skipped events counted).
//!
//! Within the window, a log keeps only what a reader still needs: each entry counts the readers
//! that have not passed it yet, and entries at the front that every reader passed are
//! released, so a busy channel whose readers keep up holds almost nothing.
//!
//! History is the log's tail kept longer: with history on, entries stay (read or not) while
//! they are within its bounds (events, bytes, age), and resuming a client is placing its cursor
//! just past the event it last saw; replay is the writer catching up. Entries outside the
//! history go as above: once every reader passed them, or once out of the window.
//!
//! Offsets are the log's own (0, 1, 2, ... as appended); sequence numbers are hub-wide, so a
//! client reading several logs and its mailbox can put frames back in the order of the calls.
//! Appends come in sequence order (one publishing thread per hub).
//!
//! Positions are what an event id resumes to. On a hub of its own, an entry's position is its
//! sequence number; fed from a shared backend (Redis), it is the number the backend gave the
//! event, the same in every process, while the sequence number stays this hub's own.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use bytes::Bytes;

use crate::config::History;
use crate::delivery_watch::Watch;
use crate::frame_arena::FrameArena;
use crate::gzip::{Deflater, GzipSettings, Segment};

/// A client's read position in one log.
pub(crate) struct Cursor {
    pub log: Arc<ChannelLog>,
    /// The offset of the next entry to send.
    pub next: u64,
    /// Set by an unsubscribe: the sequence number current at that call. What was published
    /// before it is still sent (the calls' order says so); then the cursor goes.
    pub until: Option<u64>,
}

impl Cursor {
    pub fn at(log: Arc<ChannelLog>, next: u64) -> Self {
        Cursor {
            log,
            next,
            until: None,
        }
    }
}

pub(crate) use crate::app_ids::AppId;
use crate::app_ids::{AppIds, IdRef};

mod packed;
use packed::{Meta, Packed};

/// Slots an empty log keeps: enough for the few entries a log whose readers keep up holds
/// between two writes, so a busy channel does not reallocate at every publish.
const ENTRIES_KEPT_EMPTY: usize = 64;

pub(crate) struct ChannelLog {
    /// The channel's name; None for the broadcast log.
    pub name: Option<Arc<str>>,
    state: RwLock<LogState>,
    window_events: usize,
    window_bytes: usize,
    /// Appended to since the dispatcher last woke the subscribers.
    pub(crate) dirty: AtomicBool,
}

struct LogState {
    /// History that every reader passed (log/packed.rs): the oldest entries held, just before
    /// `entries`, at offsets `packed.first()..first`.
    packed: Packed,
    entries: VecDeque<Entry>,
    /// Offset of `entries[0]`; the offset of the next append is `first + entries.len()`.
    first: u64,
    /// Bytes of the frames held, packed ones included.
    held_bytes: usize,
    /// Bytes ever appended, up to and including the newest entry.
    appended_bytes: u64,
    /// Cursors reading this log.
    readers: u32,
    /// The highest position no longer held (or never known): a resume from below it cannot be
    /// whole.
    dropped_through: u64,
    /// App-given ids of the entries held (history only; app_ids.rs).
    ids: AppIds,
    /// The hub's, or the channel's own; it can change while the log lives.
    history: History,
    /// How entries are compressed while compressed clients read the log (gzip.rs); None
    /// when the hub does not compress.
    gzip: Option<GzipSettings>,
    /// Cursors of compressed clients. While there are any, each append is compressed once.
    zipped_readers: u32,
    /// The log's compressor: made with its first compressed reader, dropped with its last.
    deflater: Option<Box<Deflater>>,
    /// Where small frames are kept (frame_arena.rs).
    arena: FrameArena,
    /// What entries' `at_ms` count from: the first entry's time, moved back for an older one
    /// and up to the oldest held when a count no longer fits 32 bits (after 49 days).
    epoch: Instant,
}

struct Entry {
    seq: u64,
    position: u64,
    frame: Bytes,
    /// `appended_bytes` just after this entry was appended.
    end: u64,
    /// Readers that have not passed this entry yet.
    unread: AtomicU32,
    /// When it was appended, for the history's age bound: milliseconds after the log's
    /// `epoch` (4 bytes where an `Instant` takes 16, in every entry a history keeps).
    at_ms: u32,
    /// The app-given id, indexed while the entry is held (history only): what the index
    /// needs to let it go.
    app_id: Option<IdRef>,
    /// What few entries have: boxed, so the others pay one pointer for both.
    extras: Option<Box<Extras>>,
}

struct Extras {
    /// Its bytes in the log's compressed stream, when compressed clients were reading.
    segment: Option<Segment>,
    /// Its delivery is reported (delivery_watch.rs).
    watch: Option<Box<Watch>>,
}

impl Entry {
    fn segment(&self) -> Option<&Segment> {
        self.extras.as_ref()?.segment.as_ref()
    }

    fn watch(&self) -> Option<&Watch> {
        self.extras.as_ref()?.watch.as_deref()
    }

    /// Its last reader passed it or left.
    fn all_read(&self) {
        if let Some(watch) = self.watch() {
            watch.report(true);
        }
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        // Reported already unless the log lets it go before every reader had it.
        if let Some(watch) = self.watch() {
            watch.report(false);
        }
    }
}

/// What a cursor at some offset has not been sent yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Lag {
    pub events: u64,
    pub bytes: u64,
    /// Entries the log dropped before the cursor read them.
    pub missed: u64,
}

impl ChannelLog {
    /// `window_bytes` must be at least the largest frame ever appended (the hub's event limit).
    pub fn new(
        name: Option<Arc<str>>,
        window_events: usize,
        window_bytes: usize,
        history: History,
    ) -> Self {
        ChannelLog {
            name,
            state: RwLock::new(LogState {
                packed: Packed::default(),
                entries: VecDeque::new(),
                first: 0,
                held_bytes: 0,
                appended_bytes: 0,
                readers: 0,
                dropped_through: 0,
                ids: AppIds::default(),
                history,
                gzip: None,
                zipped_readers: 0,
                deflater: None,
                arena: FrameArena::default(),
                epoch: Instant::now(),
            }),
            window_events: window_events.max(1),
            window_bytes,
            dirty: AtomicBool::new(false),
        }
    }

    /// Compresses appends with `settings` whenever compressed clients read the log (None:
    /// never; they get this log's frames as stored blocks). A change starts a new stream at
    /// the next append, and readers rejoin it at its first keyframe.
    pub fn compress_with(&self, settings: Option<GzipSettings>) {
        let mut state = self.state_mut();
        if state.gzip != settings {
            state.gzip = settings;
            state.deflater = None;
        }
    }

    pub fn has_history(&self) -> bool {
        self.state().history.is_on()
    }

    /// Keeps `history` from now on. Entries it no longer covers go as any others do (once
    /// read, or out of the window); turned off, app-given ids no longer resume.
    pub fn set_history(&self, history: History) {
        let mut state = self.state_mut();
        state.history = history;
        if !history.is_on() {
            state.ids.clear();
            for entry in state.entries.iter_mut() {
                entry.app_id = None;
            }
            for entry in state.packed.iter_mut() {
                entry.meta.app_id = None;
            }
        }
        self.trim(&mut state);
    }

    /// Appends the frame numbered `seq` (greater than any appended before). `app_id`, the id
    /// the application gave the event, is indexed for resuming when the log keeps history.
    /// Returns how far the slowest reader is behind now.
    #[cfg(test)]
    pub fn append(&self, seq: u64, frame: Bytes, app_id: Option<&str>) -> Lag {
        self.append_at(seq, seq, frame, app_id, Instant::now(), None)
    }

    /// `append` for an event a backend numbered `position` and stored at `at` (its age counts
    /// from then, for the history's age bound).
    pub fn append_at(
        &self,
        seq: u64,
        position: u64,
        frame: Bytes,
        app_id: Option<&str>,
        at: Instant,
        mut watch: Option<Box<Watch>>,
    ) -> Lag {
        let mut state = self.state_mut();
        if let Some(watch) = watch.as_mut() {
            watch.appended(state.readers, at);
        }
        // Into the arena only where a history may keep it and a reader has it to read: an
        // entry that goes once its readers pass it would pay the copy for nothing, and one
        // nobody reads is packed at once (log/packed.rs copies it then). Its chunks are sized
        // by the entries not packed, the only ones whose frames it holds.
        let frame = if state.history.is_on() && state.readers > 0 {
            let unpacked_bytes = state.held_bytes - state.packed.bytes();
            state.arena.keep(frame, unpacked_bytes)
        } else {
            frame
        };
        let segment = match state.gzip {
            Some(settings) if state.zipped_readers > 0 => Some(
                state
                    .deflater
                    .get_or_insert_with(|| Box::new(Deflater::new(settings)))
                    .segment(&frame),
            ),
            _ => None,
        };
        let extras =
            (segment.is_some() || watch.is_some()).then(|| Box::new(Extras { segment, watch }));
        let at_ms = state.stamp(at);
        state.appended_bytes += frame.len() as u64;
        state.held_bytes += frame.len();
        let end = state.appended_bytes;
        let unread = AtomicU32::new(state.readers);
        let offset = state.first + state.entries.len() as u64;
        let app_id = app_id
            .filter(|_| state.history.is_on())
            .map(|id| state.ids.add(id, offset, position));
        state.entries.push_back(Entry {
            seq,
            position,
            frame,
            end,
            unread,
            at_ms,
            app_id,
            extras,
        });
        if state.readers == 0 {
            // Nobody to deliver to: delivered here, at once.
            if let Some(entry) = state.entries.back() {
                entry.all_read();
            }
        }
        self.trim(&mut state);
        state.slowest_lag()
    }

    /// How far the slowest reader is behind the head (nothing when no reader is behind).
    pub fn slowest_lag(&self) -> Lag {
        self.state().slowest_lag()
    }

    /// Places a new cursor just past the event at `position`, so it reads every later one.
    /// None when the log no longer holds all of them (the history ended past `position`).
    pub fn join_after(&self, position: u64, zipped: bool) -> Option<u64> {
        let mut state = self.state_mut();
        self.trim(&mut state);
        if state.dropped_through > position {
            return None;
        }
        state.unpack_after(position);
        let start = state.entries.partition_point(|e| e.position <= position);
        for entry in state.entries.iter().skip(start) {
            entry.unread.fetch_add(1, Ordering::AcqRel);
        }
        state.readers += 1;
        state.zipped_readers += u32::from(zipped);
        Some(state.first + start as u64)
    }

    /// True when every event after `position` is still held.
    pub fn covers(&self, position: u64) -> bool {
        let mut state = self.state_mut();
        self.trim(&mut state);
        state.dropped_through <= position
    }

    /// Nothing up to `position` is known here (it was published before this log could keep
    /// it): a resume from below it gets the reset signal, not a silent gap.
    pub fn raise_floor(&self, position: u64) {
        let mut state = self.state_mut();
        state.dropped_through = state.dropped_through.max(position);
    }

    /// The held event the application gave `id`: its position, or that several hold it.
    pub fn find_app_id(&self, id: &str) -> Option<AppId> {
        let state = self.state();
        state
            .ids
            .find(id, |offset| match offset.checked_sub(state.first) {
                Some(index) => state.entries.get(index as usize).map(|e| e.position),
                None => {
                    let index = offset.checked_sub(state.packed.first())?;
                    state.packed.get(index as usize).map(|e| e.meta.position)
                }
            })
    }

    /// Whether the history holds events of the resumable stream `stream`: its numbered ones
    /// (`<stream>.<n>`) or any of `closing` (its end or error event), once what the history no
    /// longer keeps (its age bound) is dropped.
    pub fn holds_stream(&self, stream: &str, closing: &[String]) -> bool {
        let mut state = self.state_mut();
        self.trim(&mut state);
        state.ids.holds_run(stream) || closing.iter().any(|id| state.ids.holds_key(id))
    }

    /// A cursor joins at the head: it reads what is appended from now on. Returns its offset.
    pub fn join(&self, zipped: bool) -> u64 {
        let mut state = self.state_mut();
        state.readers += 1;
        state.zipped_readers += u32::from(zipped);
        state.first + state.entries.len() as u64
    }

    /// The cursor at `from` leaves: the entries it had not passed no longer wait for it.
    pub fn leave(&self, from: u64, zipped: bool) {
        let mut state = self.state_mut();
        state.readers = state.readers.saturating_sub(1);
        if zipped {
            state.zip_reader_left();
        }
        let start = from.saturating_sub(state.first) as usize;
        for entry in state.entries.iter().skip(start) {
            if entry.unread.fetch_sub(1, Ordering::AcqRel) == 1 {
                entry.all_read();
            }
        }
        self.trim(&mut state);
    }

    /// The cursor at `from` passed `count` entries (its batch was written). Entries that no
    /// reader needs any more are released from the front.
    pub fn passed(&self, from: u64, count: u64) {
        let front_released = {
            let state = self.state();
            let start = from.saturating_sub(state.first) as usize;
            // Entries below `first` were trimmed out of the window already.
            let skip = state.first.saturating_sub(from);
            let mut front_released = false;
            for (i, entry) in state
                .entries
                .iter()
                .enumerate()
                .skip(start)
                .take(count.saturating_sub(skip) as usize)
            {
                if entry.unread.fetch_sub(1, Ordering::AcqRel) == 1 {
                    entry.all_read();
                    front_released |= i == 0;
                }
            }
            front_released
        };
        if front_released {
            self.trim(&mut self.state_mut());
        }
    }

    /// A reader already counted becomes a compressed one (its client's transport compresses).
    pub fn reader_zipped(&self) {
        self.state_mut().zipped_readers += 1;
    }

    /// Passes `each` the entries from offset `from` on whose sequence number is at most
    /// `horizon`, within `max_frames` and `max_bytes` (at least one entry when any is
    /// eligible): sequence number, frame, and its segment in the log's compressed stream when
    /// it has one. Returns how far `from` lagged out of the window (entries it can never read);
    /// reading then starts at the oldest entry kept.
    pub fn read(
        &self,
        from: u64,
        horizon: u64,
        max_frames: usize,
        max_bytes: usize,
        mut each: impl FnMut(u64, &Bytes, Option<&Segment>),
    ) -> u64 {
        let state = self.state();
        let missed = state.first.saturating_sub(from);
        let start = (from.max(state.first) - state.first) as usize;
        let mut bytes = 0;
        for (taken, entry) in state.entries.iter().skip(start).enumerate() {
            if entry.seq > horizon || taken >= max_frames || (taken > 0 && bytes >= max_bytes) {
                break;
            }
            bytes += entry.frame.len();
            each(entry.seq, &entry.frame, entry.segment());
        }
        missed
    }

    /// How far a cursor at `from` is behind the head.
    pub fn lag(&self, from: u64) -> Lag {
        let state = self.state();
        let head = state.first + state.entries.len() as u64;
        let missed = state.first.saturating_sub(from);
        let start = from.max(state.first);
        let bytes_before = match start.checked_sub(state.first) {
            Some(0) | None => state
                .entries
                .front()
                .map_or(state.appended_bytes, |e| e.end - e.frame.len() as u64),
            Some(i) => state.entries[i as usize - 1].end,
        };
        Lag {
            events: head.saturating_sub(from),
            bytes: state.appended_bytes - bytes_before.min(state.appended_bytes),
            missed,
        }
    }

    /// The offset the next append will get.
    #[cfg(test)]
    pub fn head(&self) -> u64 {
        let state = self.state();
        state.first + state.entries.len() as u64
    }

    /// The offset of the oldest entry kept: a cursor below it has lagged out of the window.
    pub fn first(&self) -> u64 {
        self.state().first
    }

    /// Frames and bytes held.
    pub fn held(&self) -> (usize, usize) {
        let state = self.state();
        (state.len(), state.held_bytes)
    }

    /// The age bound of this log's history, when it has one: what `expire` enforces.
    pub fn max_age(&self) -> Option<std::time::Duration> {
        let state = self.state();
        state.history.max_age.filter(|_| state.history.is_on())
    }

    /// Drops what the history's age bound no longer keeps, without waiting for the next
    /// append (a quiet channel's old events would otherwise stay). Returns the floor this log
    /// would leave behind if it went now: Some when it holds nothing (so nothing of it is
    /// worth keeping), with the last position it dropped or was told of.
    pub fn expire(&self) -> Option<u64> {
        let mut state = self.state_mut();
        self.trim(&mut state);
        (state.len() == 0).then_some(state.dropped_through)
    }

    pub fn mark_dirty(&self) -> bool {
        !self.dirty.swap(true, Ordering::AcqRel)
    }

    /// Drops front entries that neither the history nor a reader within the window keeps, and
    /// packs those only the history keeps (log/packed.rs).
    fn trim(&self, state: &mut LogState) {
        let now = Instant::now();
        let epoch = state.epoch;
        let kept_by_history = |state: &LogState, at_ms: u32| {
            let history = &state.history;
            history.is_on()
                && state.len() <= history.max_events
                && state.held_bytes <= history.max_bytes
                && history.max_age.is_none_or(|age| {
                    let at = epoch + std::time::Duration::from_millis(u64::from(at_ms));
                    now.saturating_duration_since(at) <= age
                })
        };
        // Packed entries are older than any entry, and no reader needs them. The history keeps
        // the oldest it holds, or none of the entries behind it either.
        while let Some(front) = state.packed.front() {
            if kept_by_history(state, front.meta.at_ms) {
                break;
            }
            state.pop_packed();
        }
        while let Some(front) = state.entries.front() {
            let len = state.len();
            let in_window = len <= self.window_events && state.held_bytes <= self.window_bytes;
            let unread = front.unread.load(Ordering::Acquire) > 0;
            // A frame larger than the window stays while unread: it is alone in it.
            if unread && (in_window || len == 1) {
                break;
            }
            if kept_by_history(state, front.at_ms) {
                // Read by all (so its delivery was reported) and no compressed segment to
                // keep for a compressed reader that resumes: packed.
                if unread || front.segment().is_some() {
                    break;
                }
                state.pack_front();
                continue;
            }
            if state.packed.len() > 0 {
                // Older by offset and still kept: this one stays behind them (a backend's
                // event can be older than the one before it), or a resume from before it
                // would skip it and find the wrong entry by an id.
                break;
            }
            state.pop_front();
        }
    }

    fn state(&self) -> RwLockReadGuard<'_, LogState> {
        // A panic while holding the lock cannot leave the deque half-updated in a way that
        // breaks its invariants for readers (each push/pop is one step), so poisoning is moot.
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn state_mut(&self) -> RwLockWriteGuard<'_, LogState> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl LogState {
    /// `at` as an entry keeps it: milliseconds after the epoch. An event a backend stored
    /// before the oldest entry (a catch-up) moves the epoch back to it, so its age is its own.
    fn stamp(&mut self, at: Instant) -> u32 {
        if self.len() == 0 {
            self.epoch = at;
        } else if at < self.epoch {
            let back = u32::try_from(self.epoch.duration_since(at).as_millis()).unwrap_or(u32::MAX);
            self.epoch -= std::time::Duration::from_millis(u64::from(back));
            for entry in self.entries.iter_mut() {
                entry.at_ms = entry.at_ms.saturating_add(back);
            }
            for entry in self.packed.iter_mut() {
                entry.meta.at_ms = entry.meta.at_ms.saturating_add(back);
            }
        }
        let ms = |epoch: Instant| at.saturating_duration_since(epoch).as_millis();
        if ms(self.epoch) > u128::from(u32::MAX) {
            // 49 days on: count from the oldest entry held instead.
            let oldest = (self.entries.iter().map(|e| e.at_ms))
                .chain(self.packed.iter().map(|e| e.meta.at_ms))
                .min()
                .unwrap_or(0);
            self.epoch += std::time::Duration::from_millis(u64::from(oldest));
            for entry in self.entries.iter_mut() {
                entry.at_ms -= oldest;
            }
            for entry in self.packed.iter_mut() {
                entry.meta.at_ms -= oldest;
            }
        }
        u32::try_from(ms(self.epoch)).unwrap_or(u32::MAX)
    }

    fn zip_reader_left(&mut self) {
        self.zipped_readers = self.zipped_readers.saturating_sub(1);
        if self.zipped_readers == 0 {
            // Its state is a few hundred KiB; a later reader starts a new stream.
            self.deflater = None;
        }
    }

    /// Each entry counts the readers at or before it, so the counts never decrease from front
    /// to back: the first entry some reader still needs is found by bisection.
    fn slowest_lag(&self) -> Lag {
        let start = self
            .entries
            .partition_point(|e| e.unread.load(Ordering::Acquire) == 0);
        let bytes_before = match start {
            0 => self
                .entries
                .front()
                .map_or(self.appended_bytes, |e| e.end - e.frame.len() as u64),
            i => self.entries[i - 1].end,
        };
        Lag {
            events: (self.entries.len() - start) as u64,
            bytes: self.appended_bytes - bytes_before,
            missed: 0,
        }
    }

    /// Entries held, packed ones included.
    fn len(&self) -> usize {
        self.packed.len() + self.entries.len()
    }

    /// The front entry, read by all and kept by the history only, is packed.
    fn pack_front(&mut self) {
        let Some(mut entry) = self.entries.pop_front() else {
            return;
        };
        let held_bytes = self.held_bytes;
        let meta = Meta {
            seq: entry.seq,
            position: entry.position,
            at_ms: entry.at_ms,
            app_id: entry.app_id.take(),
        };
        self.packed.push(self.first, meta, &entry.frame, held_bytes);
        self.first += 1;
        self.after_front_went();
    }

    /// The oldest packed entry goes.
    fn pop_packed(&mut self) {
        let offset = self.packed.first();
        let before = self.packed.bytes();
        if let Some(old) = self.packed.pop_front() {
            self.held_bytes -= before - self.packed.bytes();
            if let Some(id) = old.meta.app_id {
                self.ids.remove(id, offset);
            }
            self.dropped_through = self.dropped_through.max(old.meta.position);
        }
    }

    /// A reader resumes after `position`: the packed entries past it become entries again,
    /// for the reader to count itself in and read (`join_after`).
    fn unpack_after(&mut self, position: u64) {
        let from = self.packed.partition_after(position);
        let back = self.packed.split_off(from);
        if back.is_empty() {
            return;
        }
        // Their `end`s, counted back from where the first entry starts.
        let mut end = self
            .entries
            .front()
            .map_or(self.appended_bytes, |e| e.end - e.frame.len() as u64);
        let mut unpacked: Vec<Entry> = Vec::with_capacity(back.len());
        for (packed, frame) in back.into_iter().rev() {
            let len = frame.len() as u64;
            let Meta {
                seq,
                position,
                at_ms,
                app_id,
            } = packed.meta;
            unpacked.push(Entry {
                seq,
                position,
                frame,
                end,
                unread: AtomicU32::new(0),
                at_ms,
                app_id,
                extras: None,
            });
            end -= len;
        }
        self.first -= unpacked.len() as u64;
        for entry in unpacked {
            self.entries.push_front(entry);
        }
    }

    fn pop_front(&mut self) {
        if let Some(mut old) = self.entries.pop_front() {
            self.held_bytes -= old.frame.len();
            if let Some(id) = old.app_id.take() {
                self.ids.remove(id, self.first);
            }
            self.first += 1;
            self.dropped_through = self.dropped_through.max(old.position);
        }
        self.after_front_went();
    }

    /// No entry left (all read, or packed): the arena's open chunk goes, and so does the
    /// deque's buffer once a burst made it large (a history log's entries are then packed, and
    /// an idle channel keeps no slots).
    fn after_front_went(&mut self) {
        if self.entries.is_empty() {
            self.arena.clear();
            if self.entries.capacity() > ENTRIES_KEPT_EMPTY {
                self.entries = VecDeque::new();
            }
        }
    }
}

#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod tests;
