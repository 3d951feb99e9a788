//! A gzip body decoded as it streams: the 10-byte header, raw deflate blocks handed on as soon
//! as they decode (a sync or full flush ends each event's bytes on a block boundary), the
//! trailer ignored. Only the header servers send on a stream is accepted (no name, comment or
//! extra field: flags 0), which native-sse and Node's zlib both write.

use flate2::{Decompress, FlushDecompress, Status};

const HEADER: usize = 10;

pub struct Gunzip {
    header: [u8; HEADER],
    header_len: usize,
    inflate: Decompress,
    /// The last block came (or the stream could not be decoded): nothing more is decoded.
    pub ended: bool,
    /// The stream was not one this decoder takes, or its deflate data was corrupt.
    pub failed: bool,
}

impl Default for Gunzip {
    fn default() -> Self {
        Gunzip {
            header: [0; HEADER],
            header_len: 0,
            inflate: Decompress::new(false),
            ended: false,
            failed: false,
        }
    }
}

impl Gunzip {
    /// Decodes `input`, passing each piece of plain text to `out` in order.
    pub fn feed(&mut self, mut input: &[u8], mut out: impl FnMut(&[u8])) {
        if self.header_len < HEADER {
            let n = (HEADER - self.header_len).min(input.len());
            self.header[self.header_len..self.header_len + n].copy_from_slice(&input[..n]);
            self.header_len += n;
            input = &input[n..];
            if self.header_len < HEADER {
                return;
            }
            if self.header[..4] != [0x1f, 0x8b, 8, 0] {
                self.fail();
                return;
            }
        }
        let mut plain = [0u8; 16 * 1024];
        while !self.ended {
            let (read, written) = (self.inflate.total_in(), self.inflate.total_out());
            let status = self
                .inflate
                .decompress(input, &mut plain, FlushDecompress::None);
            let consumed = (self.inflate.total_in() - read) as usize;
            let produced = (self.inflate.total_out() - written) as usize;
            input = &input[consumed..];
            out(&plain[..produced]);
            match status {
                Ok(Status::StreamEnd) => self.ended = true,
                Ok(_) if input.is_empty() && produced < plain.len() => return,
                Ok(_) if consumed == 0 && produced == 0 => return,
                Ok(_) => {}
                Err(_) => self.fail(),
            }
        }
    }

    fn fail(&mut self) {
        self.failed = true;
        self.ended = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compress, Compression, FlushCompress};

    /// A gzip header, then each piece deflated with a sync flush after it, then the last block.
    fn stream(pieces: &[&str]) -> Vec<u8> {
        let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
        let mut deflate = Compress::new(Compression::default(), false);
        let mut push = |input: &[u8], flush| {
            let mut buf = Vec::with_capacity(input.len() + 64);
            deflate.compress_vec(input, &mut buf, flush).unwrap();
            out.extend_from_slice(&buf);
        };
        for piece in pieces {
            push(piece.as_bytes(), FlushCompress::Sync);
        }
        push(b"", FlushCompress::Finish);
        out
    }

    #[test]
    fn decodes_in_every_split_and_each_flushed_piece_as_soon_as_it_is_in() {
        let pieces = ["data: 1 2\n\n", "data: 3 4\n\n", &"x".repeat(40_000)];
        let wire = stream(&pieces);
        for step in [1, 2, 7, 100, wire.len()] {
            let mut gunzip = Gunzip::default();
            let mut plain = Vec::new();
            for chunk in wire.chunks(step) {
                gunzip.feed(chunk, |p| plain.extend_from_slice(p));
            }
            assert_eq!(plain, pieces.concat().as_bytes(), "step {step}");
            assert!(gunzip.ended && !gunzip.failed);
        }
        // The first event's bytes alone (up to its sync flush) decode to the whole event.
        let first = stream(&pieces[..1]);
        let mut gunzip = Gunzip::default();
        let mut plain = Vec::new();
        gunzip.feed(&first[..first.len() - 2], |p| plain.extend_from_slice(p));
        assert_eq!(plain, pieces[0].as_bytes());
    }

    #[test]
    fn a_header_with_flags_fails() {
        let mut gunzip = Gunzip::default();
        gunzip.feed(&[0x1f, 0x8b, 8, 8, 0, 0, 0, 0, 0, 3, 1], |_| {});
        assert!(gunzip.failed);
    }
}
