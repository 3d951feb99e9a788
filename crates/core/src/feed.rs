//! What one client's writer sends next: its mailbox and its cursors in the logs it reads,
//! merged by hub-wide sequence number, so the client sees frames in the order the calls were
//! made across `broadcast`, `publish` and `send`.
//!
//! Order across sources needs a horizon. A writer could read log B (empty), then the caller
//! appends to B and to A, and the writer reads A's newer frame before B's older one. So the
//! hub keeps the highest sequence number whose frame is fully appended (`committed`); the
//! writer loads it first and takes only frames at or below it, all of which are visible in
//! their logs by then.
//!
//! A cursor moves only when its batch was fully written (`commit`), so what is in flight still
//! counts as lag, as the old per-client queue counted it until released.

use std::cell::RefCell;
use std::sync::Arc;

use bytes::Bytes;

use crate::client::ClientShared;
use crate::config::OverflowPolicy;
use crate::gzip::{GzipStream, Segment};
use crate::log::ChannelLog;
use crate::mailbox::Sequenced;

/// Frames per batch; with the chunk head and tail this stays below `IOV_MAX` (1024). A
/// producer sending tokens of tens of bytes fills batches by frame count long before the byte
/// bound: at 64 a batch a writer made four times the system calls (and spent 150-200 ns of a
/// core per 20-byte token against 90 at 256, `npm run bench -- --only loop`).
pub const MAX_FRAMES: usize = 256;
/// Bytes per batch: large enough to amortize the system call, small enough that one slow
/// client does not pin megabytes in a single in-flight batch.
pub const MAX_BATCH_BYTES: usize = 256 * 1024;

/// The client lagged out of a log's window under the `Disconnect` policy.
#[derive(Debug)]
pub(crate) struct Lagged;

/// Where a candidate frame came from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    /// A mailbox slot of this many events.
    Mailbox(u32),
    Cursor(usize),
}

/// A candidate's segment in its log's compressed stream: an index into `Scratch::segments`.
const NO_SEGMENT: u32 = u32::MAX;

/// Working space of `fill`, per worker thread rather than per client: it is empty between
/// two fills, and ten thousand idle clients would otherwise each keep a copy.
#[derive(Default)]
struct Scratch {
    candidates: Vec<(u64, Bytes, Source, u32)>,
    /// Mailbox frames on their way back (`put_back_mail`).
    read: Vec<Sequenced>,
    /// Segments of the entries read for a compressed client (gzip.rs).
    segments: Vec<Segment>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::default();
}

#[derive(Default)]
pub(crate) struct Feed {
    /// What the batch in flight took: per log, how many entries; from the mailbox, how many
    /// frames and bytes.
    taken_logs: Vec<(Arc<ChannelLog>, u64)>,
    taken_mail: (usize, usize),
    /// Event frames among them (see `is_event`).
    taken_events: u64,
}

/// What a fully written batch changed.
pub(crate) struct Committed {
    /// The client's producer may go on (see `Mailbox::release`).
    pub drained: bool,
    /// Event frames the batch carried.
    pub events: u64,
}

/// Whether the frame numbered `seq` counts as an event delivered to `client`. Comments do not:
/// they are the only frames that start with `:` (an event's frames hold fields only). Nor does
/// the client's opening frame, which dispatches nothing even when it sets `retry`.
fn is_event(client: &ClientShared, seq: u64, frame: &[u8]) -> bool {
    frame.first() != Some(&b':') && seq != client.opening
}

impl Feed {
    /// Fills `out` (empty) with the next frames in sequence order, at most one batch. Frames
    /// past `horizon` wait. Under `DropOldest`, entries a cursor lagged out of are skipped and
    /// returned as dropped; under `Disconnect` lagging out is an error. A compressed client's
    /// frames go into `out` as `gzip` encodes them.
    pub fn fill(
        &mut self,
        client: &ClientShared,
        horizon: u64,
        policy: OverflowPolicy,
        out: &mut Vec<Bytes>,
        gzip: Option<&mut GzipStream>,
    ) -> Result<u64, Lagged> {
        debug_assert!(out.is_empty() && self.taken_logs.is_empty());
        SCRATCH
            .with_borrow_mut(|scratch| self.fill_with(scratch, client, horizon, policy, out, gzip))
    }

    fn fill_with(
        &mut self,
        scratch: &mut Scratch,
        client: &ClientShared,
        horizon: u64,
        policy: OverflowPolicy,
        out: &mut Vec<Bytes>,
        mut gzip: Option<&mut GzipStream>,
    ) -> Result<u64, Lagged> {
        // Left over only if a fill on this thread panicked half-way.
        scratch.candidates.clear();
        scratch.read.clear();
        scratch.segments.clear();
        let candidates = &mut scratch.candidates;
        client.mailbox.take(horizon, MAX_FRAMES, |mail| {
            candidates.push((
                mail.seq,
                mail.frame,
                Source::Mailbox(mail.events),
                NO_SEGMENT,
            ))
        });
        let mut dropped = 0;
        let mut finished = None;
        // A plain client takes no segment (no refcount traffic on them).
        let zipped = gzip.is_some();
        let mut cursors = client.lock_cursors();
        for (index, cursor) in cursors.iter_mut().enumerate() {
            let horizon = cursor.until.map_or(horizon, |until| horizon.min(until));
            let read_from = scratch.candidates.len();
            let (candidates, segments) = (&mut scratch.candidates, &mut scratch.segments);
            let missed = cursor.log.read(
                cursor.next,
                horizon,
                MAX_FRAMES,
                MAX_BATCH_BYTES,
                |seq, frame, segment| {
                    let at = match segment {
                        Some(segment) if zipped => {
                            segments.push(segment.clone());
                            segments.len() as u32 - 1
                        }
                        _ => NO_SEGMENT,
                    };
                    candidates.push((seq, frame.clone(), Source::Cursor(index), at));
                },
            );
            let read_none = scratch.candidates.len() == read_from;
            if cursor.until == Some(horizon) && read_none && missed == 0 {
                // Unsubscribed, and everything published before that was sent.
                finished = Some(index);
            }
            if missed > 0 {
                match policy {
                    OverflowPolicy::Disconnect => {
                        drop(cursors);
                        scratch.put_back_mail(client);
                        return Err(Lagged);
                    }
                    OverflowPolicy::DropOldest => {
                        cursor.next += missed;
                        dropped += missed;
                    }
                }
            }
        }
        scratch.candidates.sort_unstable_by_key(|c| c.0);
        let mut bytes = 0;
        let mut taken = 0;
        for (_, frame, _, _) in scratch.candidates.iter() {
            if taken == MAX_FRAMES || (taken > 0 && bytes + frame.len() > MAX_BATCH_BYTES) {
                break;
            }
            taken += 1;
            bytes += frame.len();
        }
        // Moved, not cloned: a clone would add an atomic increment and decrement per delivery
        // on a refcount that every reader of the frame shares.
        for (seq, frame, source, segment) in scratch.candidates.drain(..taken) {
            match source {
                Source::Mailbox(events) => {
                    // A slot of several holds events only (see `Hub::send_many`).
                    self.taken_events += if events == 1 {
                        u64::from(is_event(client, seq, &frame))
                    } else {
                        u64::from(events)
                    };
                    self.taken_mail.0 += events as usize;
                    self.taken_mail.1 += frame.len();
                }
                Source::Cursor(index) => {
                    self.taken_events += u64::from(is_event(client, seq, &frame));
                    match self
                        .taken_logs
                        .iter_mut()
                        .find(|t| Arc::ptr_eq(&t.0, &cursors[index].log))
                    {
                        Some(entry) => entry.1 += 1,
                        None => self.taken_logs.push((cursors[index].log.clone(), 1)),
                    }
                }
            }
            match gzip.as_deref_mut() {
                None => out.push(frame),
                Some(gzip) => {
                    let segment = scratch.segments.get(segment as usize);
                    gzip.encode(&frame, segment, out);
                }
            }
        }
        scratch.segments.clear();
        // One finished cursor per fill is plenty (unsubscribes are rare); it fed no candidate.
        if let Some(index) = finished {
            let cursor = cursors.remove(index);
            cursor.log.leave(cursor.next, client.is_gzip());
        }
        drop(cursors);
        scratch.put_back_mail(client);
        Ok(dropped)
    }

    /// The batch from the last `fill` was fully written: its cursors move past it and its
    /// mailbox frames are released.
    pub fn commit(&mut self, client: &ClientShared) -> Committed {
        if !self.taken_logs.is_empty() {
            let mut cursors = client.lock_cursors();
            for (log, count) in self.taken_logs.drain(..) {
                // A log unsubscribed meanwhile has no cursor left to move.
                if let Some(cursor) = cursors.iter_mut().find(|c| Arc::ptr_eq(&c.log, &log)) {
                    log.passed(cursor.next, count);
                    cursor.next += count;
                }
            }
        }
        let (events, bytes) = std::mem::take(&mut self.taken_mail);
        Committed {
            drained: client.mailbox.release(events, bytes),
            events: std::mem::take(&mut self.taken_events),
        }
    }

    /// The client is leaving: releases what the mailbox accounting still holds for it.
    pub fn abandon(&mut self, client: &ClientShared) {
        self.taken_logs.clear();
        self.taken_events = 0;
        let (events, bytes) = std::mem::take(&mut self.taken_mail);
        client.mailbox.release(events, bytes);
    }

    /// Applies the overflow policy to cursors that fell out of their log's window while the
    /// batch in flight is still being written (the socket is blocked): under `Disconnect` that
    /// is an error, so a stalled client is cut as soon as it lags out; under `DropOldest` the
    /// cursor skips to the oldest entry kept and the skipped entries are returned as dropped,
    /// so drops are counted when they happen, not when the client next takes bytes.
    pub fn check_lag(&self, client: &ClientShared, policy: OverflowPolicy) -> Result<u64, Lagged> {
        let mut dropped = 0;
        for cursor in client.lock_cursors().iter_mut() {
            let in_flight = self
                .taken_logs
                .iter()
                .find(|t| Arc::ptr_eq(&t.0, &cursor.log))
                .map_or(0, |t| t.1);
            let first = cursor.log.first();
            let reached = cursor.next + in_flight;
            if reached < first {
                match policy {
                    OverflowPolicy::Disconnect => return Err(Lagged),
                    OverflowPolicy::DropOldest => {
                        // Commit adds the batch in flight, which lands the cursor on `first`.
                        cursor.next += first - reached;
                        dropped += first - reached;
                    }
                }
            }
        }
        Ok(dropped)
    }
}

impl Scratch {
    /// Mailbox frames among the candidates not sent go back to the front of the mailbox, in
    /// order; log candidates are simply read again from their cursors next time.
    fn put_back_mail(&mut self, client: &ClientShared) {
        if self
            .candidates
            .iter()
            .any(|c| matches!(c.2, Source::Mailbox(_)))
        {
            self.read.clear();
            self.read.extend(
                self.candidates
                    .drain(..)
                    .filter_map(|(seq, frame, source, _)| match source {
                        Source::Mailbox(events) => Some(Sequenced { seq, frame, events }),
                        Source::Cursor(_) => None,
                    }),
            );
            client.mailbox.put_back(self.read.drain(..));
        }
        // Nothing stays here between fills: a frame held would outlive its log entry.
        self.candidates.clear();
        self.read.clear();
    }
}
