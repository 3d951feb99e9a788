//! gzip encoded once per channel, not once per client.
//!
//! A gzip body is a 10-byte header, deflate blocks, and a trailer (CRC-32 and length of the
//! plain bytes). Deflate blocks may refer back to what the decoder already produced; that is
//! all a decoder's state is. So a channel's log keeps one compressor and stores, with each
//! entry, the deflate bytes of its frame ended by a sync flush (byte-aligned, decodable as
//! soon as it arrives: an EventSource sees each event when it is written). Every client whose
//! decoder has produced exactly that log's frames since the compressor's last full flush (a
//! *keyframe*: nothing after it refers to anything before) can be sent those same bytes; the
//! writer tracks that per client as a position (`Sync`), as a cursor tracks the plain stream.
//!
//! Anything else a client gets (its opening, a direct `send`, another channel's frames in
//! between, frames from before it joined, a resume's replay) goes as stored blocks: deflate
//! framing around the plain bytes, valid after any output. It puts bytes in the decoder's
//! window the channel's stream does not expect, so the client waits for the next keyframe,
//! sending stored blocks until then. No client has a compressor; a client costs a position,
//! a CRC and a length.
//!
//! A heartbeat is an empty stored block: five bytes on the wire that add nothing to the
//! decoder's output, so it keeps proxies and the connection alive without costing the client
//! its place in the channel's stream (the plain comment would, and an EventSource ignores it).

use bytes::{BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, FlushCompress};
use std::sync::atomic::{AtomicU64, Ordering};

/// The gzip header: deflate, no name or time, "unknown" OS.
pub const GZIP_HEADER: &[u8] = &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// An empty stored block (what a sync flush writes): a heartbeat for a compressed client.
pub const EMPTY_BLOCK: &[u8] = &[0, 0, 0, 0xff, 0xff];

/// The last block (fixed Huffman codes, just its end code); the trailer follows it.
const LAST_BLOCK: &[u8] = &[0x03, 0x00];

/// The most a stored block holds.
const STORED_MAX: usize = 0xffff;

/// How a hub compresses its channels' streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GzipSettings {
    /// zlib's level, 1 (fastest) to 9 (smallest).
    pub level: u32,
    /// Entries between two full flushes: how long a client that left the channel's stream
    /// (see the module's doc) waits to rejoin it, against the ratio (a full flush forgets
    /// what came before, so the entry after it compresses as if alone).
    pub keyframe_every: u32,
}

impl Default for GzipSettings {
    fn default() -> Self {
        GzipSettings {
            level: 6,
            keyframe_every: 32,
        }
    }
}

/// Compressor streams ever made, so a position in one is never taken for a position in
/// another (a log whose compressor was dropped and made again starts a new stream).
static STREAMS: AtomicU64 = AtomicU64::new(1);

/// One entry's bytes in its log's compressed stream.
#[derive(Clone)]
pub(crate) struct Segment {
    pub bytes: Bytes,
    /// The compressor stream it belongs to, and its index there.
    pub stream: u64,
    pub index: u64,
    /// Nothing in it refers to output before it.
    pub keyframe: bool,
}

/// A log's compressor: made when its first compressed reader joins, dropped with the last.
pub(crate) struct Deflater {
    compress: Compress,
    settings: GzipSettings,
    stream: u64,
    next_index: u64,
    out: Vec<u8>,
}

impl Deflater {
    pub fn new(settings: GzipSettings) -> Self {
        Deflater {
            compress: Compress::new(Compression::new(settings.level.min(9)), false),
            settings,
            stream: STREAMS.fetch_add(1, Ordering::Relaxed),
            next_index: 0,
            out: Vec::new(),
        }
    }

    /// The next entry's segment: `frame` compressed and flushed, fully if the next entry
    /// should be a keyframe.
    pub fn segment(&mut self, frame: &[u8]) -> Segment {
        let index = self.next_index;
        self.next_index += 1;
        let every = u64::from(self.settings.keyframe_every.max(1));
        let flush = if (index + 1).is_multiple_of(every) {
            FlushCompress::Full
        } else {
            FlushCompress::Sync
        };
        self.out.clear();
        // Deflate never grows data by more than a few bytes per 16 KiB block; the flush
        // marker is 5 more. What does not fit the first time gets another round.
        self.out.reserve(frame.len() + frame.len() / 1000 + 64);
        let mut input = frame;
        loop {
            let before_in = self.compress.total_in();
            let status = self.compress.compress_vec(input, &mut self.out, flush);
            let used = (self.compress.total_in() - before_in) as usize;
            input = &input[used..];
            // Done when everything went in and the flush left room to spare: a full output
            // buffer may hide more of the flush.
            if status.is_err() || (input.is_empty() && self.out.len() < self.out.capacity()) {
                break;
            }
            self.out.reserve(self.out.capacity().max(64));
        }
        Segment {
            bytes: Bytes::copy_from_slice(&self.out),
            stream: self.stream,
            index,
            keyframe: index.is_multiple_of(every),
        }
    }
}

/// One client's compressed stream: where its decoder stands, and the trailer's sums. Every
/// gzip client holds one, idle or not, so it is kept small (40 bytes): the CRC as its bare
/// state, the length as the trailer needs it (modulo 2^32), no stream id 0 for "none".
pub(crate) struct GzipStream {
    /// The compressor stream (0: none; ids start at 1) and index whose segment this client
    /// can take next.
    sync_stream: u64,
    sync_index: u64,
    /// Plain bytes and the bytes they became, since last taken (`take_counts`, after each
    /// batch: at most 256 KiB, or one event, which `maxEventBytes` keeps far below 4 GiB).
    plain: u32,
    wire: u32,
    crc: u32,
    /// ISIZE: the plain length modulo 2^32.
    plain_len: u32,
    header_sent: bool,
    finished: bool,
}

impl GzipStream {
    pub fn new() -> Self {
        GzipStream {
            sync_stream: 0,
            sync_index: 0,
            plain: 0,
            wire: 0,
            crc: 0,
            plain_len: 0,
            header_sent: false,
            finished: false,
        }
    }

    /// What goes on the wire for `frame` (plain), given its segment in a log's stream if it
    /// has one: one piece pushed to `out` (the first carries the gzip header, so a batch has
    /// as many pieces as frames).
    pub fn encode(&mut self, frame: &Bytes, segment: Option<&Segment>, out: &mut Vec<Bytes>) {
        let mut crc = crc32fast::Hasher::new_with_initial(self.crc);
        crc.update(frame);
        self.crc = crc.finalize();
        self.plain_len = self.plain_len.wrapping_add(frame.len() as u32);
        self.plain = self.plain.saturating_add(frame.len() as u32);
        let piece = match segment {
            Some(s) if s.keyframe || (self.sync_stream, self.sync_index) == (s.stream, s.index) => {
                (self.sync_stream, self.sync_index) = (s.stream, s.index + 1);
                s.bytes.clone()
            }
            _ => {
                self.sync_stream = 0;
                stored(frame)
            }
        };
        let piece = self.after_header(piece);
        self.wire = self.wire.saturating_add(piece.len() as u32);
        out.push(piece);
    }

    /// `piece`, preceded by the gzip header if it is the stream's first.
    fn after_header(&mut self, piece: Bytes) -> Bytes {
        if std::mem::replace(&mut self.header_sent, true) {
            return piece;
        }
        let mut both = BytesMut::with_capacity(GZIP_HEADER.len() + piece.len());
        both.put_slice(GZIP_HEADER);
        both.put_slice(&piece);
        both.freeze()
    }

    /// A heartbeat: nothing for the decoder to produce (see the module's doc).
    pub fn heartbeat(&mut self) -> Bytes {
        let beat = self.after_header(Bytes::from_static(EMPTY_BLOCK));
        self.wire = self.wire.saturating_add(beat.len() as u32);
        beat
    }

    /// The end of the stream, once: the last block and the trailer, after which a decoder
    /// checks the CRC and length of everything. None when it was given already.
    pub fn finish(&mut self) -> Option<Bytes> {
        if std::mem::replace(&mut self.finished, true) {
            return None;
        }
        let mut end = BytesMut::with_capacity(LAST_BLOCK.len() + 8);
        end.put_slice(LAST_BLOCK);
        end.put_u32_le(self.crc);
        end.put_u32_le(self.plain_len);
        let end = self.after_header(end.freeze());
        self.wire = self.wire.saturating_add(end.len() as u32);
        Some(end)
    }

    /// Plain bytes encoded and wire bytes they became since the last call.
    pub fn take_counts(&mut self) -> (u64, u64) {
        (
            u64::from(std::mem::take(&mut self.plain)),
            u64::from(std::mem::take(&mut self.wire)),
        )
    }
}

/// `frame` as stored blocks: deflate's framing around the plain bytes.
fn stored(frame: &[u8]) -> Bytes {
    let blocks = frame.len().div_ceil(STORED_MAX).max(1);
    let mut out = BytesMut::with_capacity(frame.len() + 5 * blocks);
    let mut chunks = frame.chunks(STORED_MAX);
    for _ in 0..blocks {
        let chunk = chunks.next().unwrap_or(&[]);
        let len = chunk.len() as u16;
        // Not final, stored; the rest of the byte is padding (the stream is byte-aligned
        // after every flush and every stored block).
        out.put_u8(0);
        out.put_u16_le(len);
        out.put_u16_le(!len);
        out.put_slice(chunk);
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use std::io::Read;

    fn gunzip(wire: &[u8]) -> Vec<u8> {
        let mut plain = Vec::new();
        GzDecoder::new(wire)
            .read_to_end(&mut plain)
            .expect("a valid gzip stream");
        plain
    }

    fn price(i: u32) -> Bytes {
        Bytes::from(format!(
            "id: {i}\nevent: price\ndata: {{\"symbol\":\"ACME\",\"price\":{}.{},\"volume\":{},\"seq\":{i}}}\n\n",
            100 + i % 7,
            i % 100,
            1000 + i * 13
        ))
    }

    #[test]
    fn a_client_stream_is_40_bytes() {
        // Every gzip client holds one, idle or not (a 48-byte allocation with malloc's header).
        assert_eq!(std::mem::size_of::<GzipStream>(), 40);
    }

    #[test]
    fn a_client_in_sync_gets_the_shared_segments_and_decodes_exactly() {
        let mut deflater = Deflater::new(GzipSettings::default());
        let mut client = GzipStream::new();
        let (mut wire, mut plain) = (Vec::new(), Vec::new());
        for i in 0..200 {
            let frame = price(i);
            let segment = deflater.segment(&frame);
            let mut out = Vec::new();
            client.encode(&frame, Some(&segment), &mut out);
            let expected = if i == 0 {
                [GZIP_HEADER, &segment.bytes].concat()
            } else {
                segment.bytes.to_vec()
            };
            assert_eq!(out.concat(), expected, "event {i} is the shared segment");
            plain.extend_from_slice(&frame);
            out.iter().for_each(|b| wire.extend_from_slice(b));
        }
        wire.extend_from_slice(&client.finish().unwrap());
        assert_eq!(gunzip(&wire), plain);
        let share = wire.len() as f64 / plain.len() as f64;
        assert!(share < 0.45, "compressed to {share:.3} of plain");
    }

    #[test]
    fn a_client_that_joins_late_waits_for_a_keyframe_in_stored_blocks() {
        let settings = GzipSettings {
            level: 6,
            keyframe_every: 8,
        };
        let mut deflater = Deflater::new(settings);
        let mut late = GzipStream::new();
        let (mut wire, mut plain) = (Vec::new(), Vec::new());
        for i in 0..40 {
            let frame = price(i);
            let segment = deflater.segment(&frame);
            if i < 3 {
                continue;
            }
            let mut out = Vec::new();
            late.encode(&frame, Some(&segment), &mut out);
            let last = out.last().unwrap();
            // Stored until index 8, the first keyframe it meets; shared from there, but for
            // the private frame after event 20, which leaves it stored until 24.
            let shared = i >= 8 && !(21..24).contains(&i);
            assert_eq!(*last == segment.bytes, shared, "event {i}");
            plain.extend_from_slice(&frame);
            out.iter().for_each(|b| wire.extend_from_slice(b));
            if i == 20 {
                // A private frame in between: stored, and it leaves the stream until 24.
                let own = Bytes::from_static(b"data: just you\n\n");
                let mut out = Vec::new();
                late.encode(&own, None, &mut out);
                plain.extend_from_slice(&own);
                out.iter().for_each(|b| wire.extend_from_slice(b));
                wire.extend_from_slice(&late.heartbeat());
            }
        }
        wire.extend_from_slice(&late.finish().unwrap());
        assert_eq!(gunzip(&wire), plain);
    }

    #[test]
    fn large_frames_span_several_stored_blocks() {
        let frame = Bytes::from(vec![b'x'; 3 * STORED_MAX + 7]);
        let mut client = GzipStream::new();
        let mut out = Vec::new();
        client.encode(&frame, None, &mut out);
        out.push(client.finish().unwrap());
        assert_eq!(gunzip(&out.concat()), frame);
        // Empty frames (none should come) still make a valid block.
        assert_eq!(stored(b"").as_ref(), EMPTY_BLOCK);
    }

    #[test]
    fn an_empty_stream_is_a_valid_gzip_body() {
        let mut client = GzipStream::new();
        assert_eq!(gunzip(&client.finish().unwrap()), b"");
        assert!(client.finish().is_none(), "the end is given once");
        let mut beat = GzipStream::new();
        let mut wire = beat.heartbeat().to_vec();
        wire.extend_from_slice(&beat.heartbeat());
        wire.extend_from_slice(&beat.finish().unwrap());
        assert_eq!(gunzip(&wire), b"");
    }
}
