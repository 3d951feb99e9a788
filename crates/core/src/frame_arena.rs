//! Where a log keeps its small frames: copied one after another into shared chunks, instead of
//! each in an allocation of its own.
//!
//! A frame encoded on its own costs its allocation's rounding and header, the slack of the
//! encoder's size estimate, and, once a writer clones it, a second allocation for the shared
//! count: about 100 bytes around a resumable stream's 40-byte token. Copied into a chunk, it
//! costs its bytes; the chunk's allocation and count are paid once for all the frames in it.
//! Entries leave a log oldest first, so its chunks are let go in the order they were filled
//! (a chunk goes once its last frame does; a writer still sending one keeps it a moment longer).
//!
//! A chunk is sized by what the log holds: a quiet channel's one event gets a chunk of about
//! its size, a busy history chunks of up to `CHUNK_MAX`, so the slack a log can carry, the
//! unfilled end of its newest chunk, is small beside what it holds.

use bytes::{Bytes, BytesMut};

/// Frames larger than this keep their own allocation: its overhead is small beside them, and
/// a copy would cost more than it saves.
pub(crate) const COPIED_MAX: usize = 1024;
/// The smallest chunk: a few small frames.
const CHUNK_MIN: usize = 128;
/// The largest chunk: large enough that its overhead is nothing per frame, small enough that
/// a log's unfilled tail is no burden.
const CHUNK_MAX: usize = 16 * 1024;

/// A new chunk for a store of small frames holding `held_bytes` (this arena, a log's packed
/// history): a quarter of it, so the unfilled end stays small beside it, at least `smallest`,
/// and room for `frame`.
pub(crate) fn chunk_size(held_bytes: usize, smallest: usize, frame: usize) -> usize {
    (held_bytes / 4).clamp(smallest, CHUNK_MAX).max(frame)
}

#[derive(Default)]
pub(crate) struct FrameArena {
    /// The unfilled end of the newest chunk (empty before the first small frame).
    tail: BytesMut,
}

impl FrameArena {
    /// Keeps `frame` for a log holding `held_bytes`: a small frame copied into the newest
    /// chunk (a new one when it does not fit), a large one as it is.
    pub fn keep(&mut self, frame: Bytes, held_bytes: usize) -> Bytes {
        if frame.len() > COPIED_MAX || frame.is_empty() {
            return frame;
        }
        if self.tail.capacity() - self.tail.len() < frame.len() {
            // A quarter of what the log holds: the unfilled end stays small beside it.
            self.tail = BytesMut::with_capacity(chunk_size(held_bytes, CHUNK_MIN, frame.len()));
        }
        self.tail.extend_from_slice(&frame);
        self.tail.split().freeze()
    }

    /// The log holds nothing: its newest chunk goes too (an idle channel keeps no slack).
    pub fn clear(&mut self) {
        self.tail = BytesMut::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_frames_share_a_chunk_and_keep_their_bytes() {
        let mut arena = FrameArena::default();
        let frames: Vec<Bytes> = (0..20)
            .map(|n| arena.keep(Bytes::from(format!("id: s.{n}\ndata: token {n}\n\n")), 4096))
            .collect();
        for (n, frame) in frames.iter().enumerate() {
            assert_eq!(
                &frame[..],
                format!("id: s.{n}\ndata: token {n}\n\n").as_bytes()
            );
        }
        // One after another in one allocation: each starts where the one before ended.
        for pair in frames.windows(2) {
            assert_eq!(
                pair[0].as_ptr().wrapping_add(pair[0].len()),
                pair[1].as_ptr()
            );
        }
    }

    #[test]
    fn a_large_frame_is_kept_as_given_and_a_small_log_gets_a_small_chunk() {
        let mut arena = FrameArena::default();
        let large = Bytes::from(vec![b'x'; COPIED_MAX + 1]);
        let kept = arena.keep(large.clone(), 0);
        assert_eq!(kept.as_ptr(), large.as_ptr(), "not copied");
        let small = arena.keep(Bytes::from_static(b"data: 1\n\n"), 0);
        assert_eq!(&small[..], b"data: 1\n\n");
        assert!(
            arena.tail.capacity() <= CHUNK_MIN,
            "{}",
            arena.tail.capacity()
        );
        arena.clear();
        assert_eq!(arena.tail.capacity(), 0);
    }

    #[test]
    fn a_frame_that_does_not_fit_starts_a_new_chunk() {
        let mut arena = FrameArena::default();
        let first = arena.keep(Bytes::from(vec![b'a'; 100]), 0);
        let second = arena.keep(Bytes::from(vec![b'b'; 100]), 100);
        assert_eq!(&first[..], &[b'a'; 100][..]);
        assert_eq!(&second[..], &[b'b'; 100][..]);
        assert_ne!(first.as_ptr().wrapping_add(100), second.as_ptr());
    }
}
