//! A request body read as pieces of whole lines, so a device re-sending a 40 MB history
//! is stored a few thousand lines at a time in bounded memory, and a single absurd line
//! (megabytes without a line break) is cut and rejected alone.

use axum::body::{Body, BodyDataStream};
use bytes::BytesMut;
use futures::StreamExt;

/// Whole lines of a body, and the lines too long to keep (in their kept form).
#[derive(Debug, Default)]
pub struct Piece {
    /// Complete lines, each ending in `\n` but perhaps the body's last one.
    pub text: Vec<u8>,
    /// Lines longer than the limit: what is kept of each ([`crate::protocol::kept_line`]).
    pub cut: Vec<String>,
}

impl Piece {
    pub fn is_empty(&self) -> bool {
        self.text.is_empty() && self.cut.is_empty()
    }
}

#[allow(missing_debug_implementations)] // holds a body stream
pub struct Pieces {
    stream: BodyDataStream,
    buf: BytesMut,
    /// Bytes of `buf` already known to hold no line break.
    scanned: usize,
    ended: bool,
    error: Option<String>,
    max_line: usize,
    /// A line over `max_line` being skipped: its kept start and its length so far.
    skipping: Option<(Vec<u8>, usize)>,
    bytes: u64,
}

impl Pieces {
    /// `max_line`: the longest line held whole; a longer one is cut.
    pub fn new(body: Body, max_line: usize) -> Self {
        Self {
            stream: body.into_data_stream(),
            buf: BytesMut::new(),
            scanned: 0,
            ended: false,
            error: None,
            max_line,
            skipping: None,
            bytes: 0,
        }
    }

    /// Why the body ended early (cut short, timed out, too large), once it has ended.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Bytes received so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Up to `max_lines` lines (and at most about `max_bytes`); `None` when the body
    /// has no more.
    pub async fn next(&mut self, max_lines: usize, max_bytes: usize) -> Option<Piece> {
        let mut piece = Piece::default();
        let mut lines = 0;
        loop {
            // Whole lines already in the buffer.
            while lines < max_lines && piece.text.len() < max_bytes {
                let Some(at) = self.buf[self.scanned..].iter().position(|b| *b == b'\n') else {
                    break;
                };
                let end = self.scanned + at + 1;
                let line = self.buf.split_to(end);
                self.scanned = 0;
                match self.skipping.take() {
                    Some((start, len)) => piece.cut.push(kept(&start, len + line.len() - 1)),
                    None => piece.text.extend_from_slice(&line),
                }
                lines += 1;
            }
            if lines >= max_lines || piece.text.len() >= max_bytes {
                return Some(piece);
            }
            self.scanned = self.buf.len();
            // No break in sight: a line too long to hold is cut here and skipped.
            if self.buf.len() > self.max_line {
                let len = self.buf.len();
                match &mut self.skipping {
                    Some((_, skipped)) => *skipped += len,
                    None => {
                        let start = self.buf[..crate::protocol::MAX_KEPT_LINE.min(len)].to_vec();
                        self.skipping = Some((start, len));
                    }
                }
                self.buf.clear();
                self.scanned = 0;
            }
            if self.ended {
                // The last line, without its break.
                if let Some((start, len)) = self.skipping.take() {
                    piece.cut.push(kept(&start, len + self.buf.len()));
                    self.buf.clear();
                } else if !self.buf.is_empty() {
                    piece.text.extend_from_slice(&self.buf.split());
                }
                self.scanned = 0;
                return (!piece.is_empty()).then_some(piece);
            }
            match self.stream.next().await {
                Some(Ok(chunk)) => {
                    self.bytes += chunk.len() as u64;
                    self.buf.extend_from_slice(&chunk);
                }
                Some(Err(e)) => {
                    self.error = Some(
                        std::error::Error::source(&e)
                            .map_or_else(|| e.to_string(), |s| s.to_string()),
                    );
                    self.ended = true;
                }
                None => self.ended = true,
            }
        }
    }

    /// Reads the rest of the body without keeping it; returns its lines and bytes.
    pub async fn drain(&mut self) -> (usize, u64) {
        let mut lines = 0;
        while let Some(piece) = self.next(usize::MAX, 1 << 20).await {
            lines += piece.cut.len()
                + piece
                    .text
                    .split(|b| *b == b'\n')
                    .filter(|l| !l.is_empty())
                    .count();
        }
        (lines, self.bytes)
    }
}

fn kept(start: &[u8], len: usize) -> String {
    let start = String::from_utf8_lossy(start);
    let mut end = start.len().min(crate::protocol::MAX_KEPT_LINE);
    while !start.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}… ({len} bytes in all)",
        start[..end].trim_end_matches(['\r', '\n'])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(chunks: Vec<&'static [u8]>) -> Body {
        Body::from_stream(futures::stream::iter(
            chunks
                .into_iter()
                .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::from_static(c))),
        ))
    }

    #[tokio::test]
    async fn lines_across_chunks_in_pieces() {
        let mut pieces = Pieces::new(body(vec![b"a\nbb", b"b\nc", b"cc\ndd"]), 100);
        let first = pieces.next(2, 1 << 20).await.unwrap();
        assert_eq!(first.text, b"a\nbbb\n");
        let second = pieces.next(2, 1 << 20).await.unwrap();
        assert_eq!(second.text, b"ccc\ndd");
        assert!(pieces.next(2, 1 << 20).await.is_none());
        assert_eq!(pieces.bytes(), 12);
    }

    #[tokio::test]
    async fn a_line_too_long_is_cut_alone() {
        let long: &'static [u8] = Box::leak(vec![b'9'; 5000].into_boxed_slice());
        let mut pieces = Pieces::new(body(vec![b"ok1\n", long, long, b"\nok2\n"]), 1024);
        let piece = pieces.next(100, 1 << 20).await.unwrap();
        assert_eq!(piece.text, b"ok1\nok2\n");
        assert_eq!(piece.cut.len(), 1);
        assert!(
            piece.cut[0].ends_with("(10000 bytes in all)"),
            "{}",
            piece.cut[0]
        );
    }
}
