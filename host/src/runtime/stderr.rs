//! What a guest writes to stderr during one call, kept within a fixed bound: the first
//! [`HEAD_BYTES`] and the last [`TAIL_BYTES`] (a panic's message is written last), plus
//! a count of everything written. A guest writing gigabytes costs the host at most
//! `HEAD_BYTES + TAIL_BYTES` of memory; writes are never refused, so a chatty plugin
//! is not broken by the cap.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Bytes kept from the start of a call's stderr.
pub const HEAD_BYTES: usize = 1024;
/// Bytes kept from the end of a call's stderr.
pub const TAIL_BYTES: usize = 3072;
/// The most one `write` may carry (what `check-write` permits).
const WRITE_PERMIT: usize = 64 * 1024;
/// The longest panic message put into an error.
const PANIC_MESSAGE_BYTES: usize = 1024;

#[derive(Debug, Default)]
struct Buffer {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    total: u64,
}

/// One call's stderr. Clones share the buffer (the WASI context holds one, the
/// store's state another).
#[derive(Debug, Clone, Default)]
pub struct StderrCapture {
    buffer: Arc<Mutex<Buffer>>,
}

/// What was captured, as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// The kept bytes (lossy UTF-8), with a marker where bytes were dropped.
    pub text: String,
    /// Everything the guest wrote, kept or not.
    pub total_bytes: u64,
}

impl Captured {
    /// Bytes written but not kept.
    pub fn dropped_bytes(&self) -> u64 {
        self.total_bytes
            .saturating_sub((HEAD_BYTES + TAIL_BYTES) as u64)
    }

    /// The message of the last Rust panic in the capture (the standard panic hook
    /// writes `panicked at <file>:<line>:<col>:\n<message>\nnote: ...`), on one line.
    pub fn panic_message(&self) -> Option<String> {
        let start = self.text.rfind("panicked at ")?;
        let rest = &self.text[start..];
        let end = rest
            .find("\nnote: run with `RUST_BACKTRACE")
            .unwrap_or(rest.len());
        let message = rest[..end].trim_end().replace('\n', " ");
        Some(truncate(&message, PANIC_MESSAGE_BYTES))
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

impl StderrCapture {
    fn append(&self, mut bytes: &[u8]) {
        let mut buffer = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
        buffer.total += bytes.len() as u64;
        let room = HEAD_BYTES - buffer.head.len();
        if room > 0 {
            let taken = room.min(bytes.len());
            buffer.head.extend_from_slice(&bytes[..taken]);
            bytes = &bytes[taken..];
        }
        if bytes.len() >= TAIL_BYTES {
            buffer.tail.clear();
            bytes = &bytes[bytes.len() - TAIL_BYTES..];
        }
        let overflow = (buffer.tail.len() + bytes.len()).saturating_sub(TAIL_BYTES);
        buffer.tail.drain(..overflow);
        buffer.tail.extend(bytes);
    }

    /// What was written so far; `None` when nothing was.
    pub fn captured(&self) -> Option<Captured> {
        let buffer = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
        if buffer.total == 0 {
            return None;
        }
        let kept = (buffer.head.len() + buffer.tail.len()) as u64;
        let mut bytes = buffer.head.clone();
        if buffer.total > kept {
            let marker = format!("\n[... {} bytes not kept ...]\n", buffer.total - kept);
            bytes.extend_from_slice(marker.as_bytes());
        }
        bytes.extend(buffer.tail.iter());
        Some(Captured {
            text: String::from_utf8_lossy(&bytes).into_owned(),
            total_bytes: buffer.total,
        })
    }
}

impl IsTerminal for StderrCapture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for StderrCapture {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

// Writes land in the buffer synchronously, so when a call returns (or traps) its
// capture is complete: nothing is still in flight in a background task.
impl OutputStream for StderrCapture {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for StderrCapture {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for StderrCapture {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.append(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_head_and_tail_within_the_bound() {
        let capture = StderrCapture::default();
        assert_eq!(capture.captured(), None);
        capture.append(b"first line\n");
        for _ in 0..10_000 {
            capture.append(&[b'x'; 1000]);
        }
        capture.append(b"\nthread 'main' panicked at src/lib.rs:1:2:\nboom 42\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n");
        let captured = capture.captured().unwrap();
        assert!(captured.total_bytes > 10_000_000);
        assert!(captured.text.starts_with("first line\n"));
        assert!(captured.text.contains("bytes not kept"));
        assert!(captured.text.len() < HEAD_BYTES + TAIL_BYTES + 100);
        assert_eq!(
            captured.panic_message().as_deref(),
            Some("panicked at src/lib.rs:1:2: boom 42")
        );
        let buffer = capture.buffer.lock().unwrap();
        assert_eq!(buffer.head.len(), HEAD_BYTES);
        assert_eq!(buffer.tail.len(), TAIL_BYTES);
    }

    #[test]
    fn a_huge_single_write_keeps_its_end() {
        let capture = StderrCapture::default();
        let mut big = vec![b'a'; 5 << 20];
        big.extend_from_slice(b"the end");
        capture.append(&big);
        let captured = capture.captured().unwrap();
        assert!(captured.text.ends_with("the end"));
        assert_eq!(captured.dropped_bytes(), big.len() as u64 - 4096);
        assert_eq!(captured.panic_message(), None);
    }

    #[test]
    fn short_output_is_kept_whole() {
        let capture = StderrCapture::default();
        capture.append(b"hello ");
        capture.append(b"world");
        let captured = capture.captured().unwrap();
        assert_eq!(captured.text, "hello world");
        assert_eq!(captured.dropped_bytes(), 0);
    }
}
