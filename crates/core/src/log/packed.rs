//! The part of a log's history every reader has passed, packed: what is left of an entry once
//! nobody is reading it is what a resume needs to find it and send it again (its sequence
//! number, position, age and id) and its bytes. An `Entry` keeps a frame handle, a byte
//! count, a reader count and a box of rare fields besides: 80 bytes a token, twice a
//! resumable stream's 40-byte frame, plus its deque's slack. Packed, a token costs 32 bytes
//! and its frame's bytes, copied back to back into shared chunks.
//!
//! Packed entries are always the log's oldest: an entry is packed only from the front of the
//! entries, and only once no reader has it to send, so no cursor ever points among them. A
//! reader that resumes into them gets them back as entries (`unpack`), which it then reads as
//! any other; once it passed them, they are packed again.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::app_ids::IdRef;
use crate::frame_arena::chunk_size;

/// A packed history's smallest chunk: above the arena's, since every stream's history starts
/// small and a chunk's allocation costs the same whatever it holds (128 B read 141-144 B of
/// RSS a stream token against 127, `bench/history-memory.js 100000 20 --streams`).
const CHUNK_MIN: usize = 256;

/// What a packed entry keeps besides its frame: what a resume finds it by and orders it by,
/// its age, and its id for the index.
pub(super) struct Meta {
    pub seq: u64,
    pub position: u64,
    pub at_ms: u32,
    pub app_id: Option<IdRef>,
}

/// One packed entry. Its frame ends at `end` in chunk `chunk` and starts where the entry
/// before it ended in that chunk, or at the chunk's start (4 bytes less than a start and a
/// length, and the entry fits 32).
pub(super) struct PackedEntry {
    pub meta: Meta,
    /// The chunk's number: chunks are numbered as they are started, from 0.
    chunk: u32,
    end: u32,
}

#[derive(Default)]
pub(super) struct Packed {
    entries: VecDeque<PackedEntry>,
    /// Offset (in the log) of `entries[0]`.
    first: u64,
    /// Full chunks, oldest first; `chunks[0]` is chunk number `first_chunk`.
    chunks: VecDeque<Bytes>,
    first_chunk: u32,
    /// The chunk being filled: number `first_chunk + chunks.len()`.
    open: BytesMut,
    /// Where the frame of `entries[0]` starts in its chunk.
    front_start: u32,
    bytes: usize,
}

impl Packed {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Bytes of the frames it holds.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Offset of the oldest packed entry.
    pub fn first(&self) -> u64 {
        self.first
    }

    pub fn front(&self) -> Option<&PackedEntry> {
        self.entries.front()
    }

    pub fn get(&self, index: usize) -> Option<&PackedEntry> {
        self.entries.get(index)
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut PackedEntry> {
        self.entries.iter_mut()
    }

    pub fn iter(&self) -> impl Iterator<Item = &PackedEntry> {
        self.entries.iter()
    }

    /// Packs the entry at offset `offset` (the one after the newest packed, or the first when
    /// empty), copying its frame. `held_bytes` (what the log holds) sizes a new chunk.
    pub fn push(&mut self, offset: u64, meta: Meta, frame: &[u8], held_bytes: usize) {
        debug_assert!(self.entries.is_empty() || offset == self.first + self.len() as u64);
        if self.open.capacity() - self.open.len() < frame.len() {
            self.close_open();
            self.open = BytesMut::with_capacity(chunk_size(held_bytes, CHUNK_MIN, frame.len()));
        }
        if self.entries.is_empty() {
            self.first = offset;
            self.front_start = self.open.len() as u32;
        }
        self.open.extend_from_slice(frame);
        self.bytes += frame.len();
        self.entries.push_back(PackedEntry {
            meta,
            chunk: self.open_number(),
            end: self.open.len() as u32,
        });
    }

    /// Drops the oldest entry; returns it (its frame's bytes go once no other entry is in its
    /// chunk).
    pub fn pop_front(&mut self) -> Option<PackedEntry> {
        let entry = self.entries.pop_front()?;
        self.first += 1;
        self.bytes -= (entry.end - self.front_start) as usize;
        match self.entries.front().map(|next| next.chunk) {
            Some(next) => {
                self.front_start = if next == entry.chunk { entry.end } else { 0 };
                while self.first_chunk != next && !self.chunks.is_empty() {
                    self.chunks.pop_front();
                    self.first_chunk = self.first_chunk.wrapping_add(1);
                }
            }
            None => self.clear_chunks(),
        }
        Some(entry)
    }

    /// The entries from index `from` on, newest last, with their frames, taken out (a reader
    /// resumes into them).
    pub fn split_off(&mut self, from: usize) -> Vec<(PackedEntry, Bytes)> {
        if from >= self.entries.len() {
            return Vec::new();
        }
        // What readers get must be shared, immutable bytes: the open chunk is closed here.
        self.close_open();
        let mut start = self.start_of(from);
        let mut chunk_of_start = self.entries[from].chunk;
        let taken: Vec<PackedEntry> = self.entries.drain(from..).collect();
        let out = taken
            .into_iter()
            .map(|entry| {
                if entry.chunk != chunk_of_start {
                    (start, chunk_of_start) = (0, entry.chunk);
                }
                // An empty frame may have no chunk of its own.
                let frame = if entry.end == start {
                    Bytes::new()
                } else {
                    let chunk = &self.chunks[entry.chunk.wrapping_sub(self.first_chunk) as usize];
                    chunk.slice(start as usize..entry.end as usize)
                };
                start = entry.end;
                self.bytes -= frame.len();
                (entry, frame)
            })
            .collect();
        match self.entries.back().map(|last| last.chunk) {
            Some(last) => {
                let keep = last.wrapping_sub(self.first_chunk) as usize + 1;
                self.chunks.truncate(keep);
            }
            None => self.clear_chunks(),
        }
        out
    }

    /// Index of the first entry whose position is above `position` (positions rise).
    pub fn partition_after(&self, position: u64) -> usize {
        self.entries
            .partition_point(|e| e.meta.position <= position)
    }

    /// Where the frame of `entries[index]` starts in its chunk.
    fn start_of(&self, index: usize) -> u32 {
        match index.checked_sub(1).map(|before| &self.entries[before]) {
            None => self.front_start,
            Some(before) if before.chunk == self.entries[index].chunk => before.end,
            Some(_) => 0,
        }
    }

    fn open_number(&self) -> u32 {
        self.first_chunk.wrapping_add(self.chunks.len() as u32)
    }

    /// The open chunk, if anything is in it, joins the full ones; what is left of its
    /// allocation becomes the next chunk.
    fn close_open(&mut self) {
        if !self.open.is_empty() {
            self.chunks.push_back(self.open.split().freeze());
        }
    }

    fn clear_chunks(&mut self) {
        let next = self
            .open_number()
            .wrapping_add(u32::from(!self.open.is_empty()));
        self.chunks.clear();
        self.open = BytesMut::new();
        self.first_chunk = next;
        self.front_start = 0;
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: u64) -> Vec<u8> {
        format!("id: s.{n}\ndata: token {n}\n\n").into_bytes()
    }

    fn meta(n: u64) -> Meta {
        Meta {
            seq: n,
            position: n,
            at_ms: 0,
            app_id: None,
        }
    }

    fn pack(packed: &mut Packed, range: std::ops::Range<u64>) {
        for n in range {
            packed.push(n, meta(n), &frame(n), 1 << 20);
        }
    }

    #[test]
    fn a_packed_entry_stays_small() {
        assert!(
            std::mem::size_of::<PackedEntry>() <= 32,
            "{}",
            std::mem::size_of::<PackedEntry>()
        );
    }

    #[test]
    fn frames_come_back_whole_and_in_order_wherever_the_chunks_end() {
        let mut packed = Packed::default();
        // Small chunks (256 B for a small history): these 2,000 frames span many.
        for n in 0..2000 {
            packed.push(n, meta(n), &frame(n), 0);
        }
        assert!(packed.chunks.len() > 100, "{}", packed.chunks.len());
        for _ in 0..700 {
            packed.pop_front();
        }
        assert_eq!(packed.first(), 700);
        let from = packed.partition_after(1499);
        assert_eq!(from, 800);
        let back = packed.split_off(from);
        assert_eq!(back.len(), 500);
        for (entry, bytes) in &back {
            assert_eq!(&bytes[..], &frame(entry.meta.seq)[..]);
        }
        assert_eq!(back[0].0.meta.seq, 1500);
        assert_eq!(packed.len(), 800);
        // Packing goes on after a split, and the rest still pops in order.
        pack(&mut packed, 1500..1510);
        let mut seqs = Vec::new();
        while let Some(entry) = packed.pop_front() {
            seqs.push(entry.meta.seq);
        }
        assert_eq!(seqs, (700..1510).collect::<Vec<_>>());
        assert_eq!((packed.bytes(), packed.chunks.len()), (0, 0));
    }

    #[test]
    fn chunks_go_with_their_last_entry() {
        let mut packed = Packed::default();
        for n in 0..100 {
            packed.push(n, meta(n), &frame(n), 0);
        }
        let total: usize = (0..100).map(|n| frame(n).len()).sum();
        assert_eq!(packed.bytes(), total);
        let chunks = packed.chunks.len();
        for _ in 0..50 {
            packed.pop_front();
        }
        assert!(packed.chunks.len() < chunks);
        while packed.pop_front().is_some() {}
        assert_eq!(packed.bytes(), 0);
        assert!(packed.chunks.is_empty() && packed.open.capacity() == 0);
    }
}
