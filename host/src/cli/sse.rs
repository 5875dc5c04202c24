//! A minimal Server-Sent Events reader for the CLI: frames of `id:`, `event:` and
//! `data:` lines, ended by a blank line (comments and keep-alives skipped).

use anyhow::Context;
use futures_util::{Stream, StreamExt};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Frame {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

pub struct Frames<S> {
    body: S,
    buffer: Vec<u8>,
    frame: Frame,
}

impl<S, B, E> Frames<S>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    E: std::error::Error + Send + Sync + 'static,
{
    pub fn new(body: S) -> Self {
        Frames {
            body,
            buffer: Vec::new(),
            frame: Frame::default(),
        }
    }

    /// The next complete frame; `None` when the stream ended.
    pub async fn next(&mut self) -> anyhow::Result<Option<Frame>> {
        loop {
            while let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line);
                let line = line.trim_end_matches(['\n', '\r']);
                if line.is_empty() {
                    let frame = std::mem::take(&mut self.frame);
                    if frame != Frame::default() {
                        return Ok(Some(frame));
                    }
                    continue;
                }
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                match field {
                    "id" => self.frame.id = Some(value.to_string()),
                    "event" => self.frame.event = Some(value.to_string()),
                    "data" => {
                        if !self.frame.data.is_empty() {
                            self.frame.data.push('\n');
                        }
                        self.frame.data.push_str(value);
                    }
                    _ => {} // comments (`: keep-alive`) and `retry:`
                }
            }
            match self.body.next().await {
                Some(chunk) => self
                    .buffer
                    .extend_from_slice(chunk.context("reading the event stream")?.as_ref()),
                None => return Ok(None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_are_split_on_blank_lines_across_chunks() {
        let chunks: Vec<Result<&[u8], std::io::Error>> = vec![
            Ok(b": keep-alive\n\nid: 1\nevent: started\nda"),
            Ok(b"ta: {\"a\":1}\n\nid: 2\r\nevent: finished\r\ndata: x\r\n\r\n"),
        ];
        let mut frames = Frames::new(futures_util::stream::iter(chunks));
        let first = frames.next().await.unwrap().unwrap();
        assert_eq!(first.id.as_deref(), Some("1"));
        assert_eq!(first.event.as_deref(), Some("started"));
        assert_eq!(first.data, "{\"a\":1}");
        let second = frames.next().await.unwrap().unwrap();
        assert_eq!(second.event.as_deref(), Some("finished"));
        assert_eq!(second.data, "x");
        assert_eq!(frames.next().await.unwrap(), None);
    }
}
