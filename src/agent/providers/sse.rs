//! Minimal incremental Server-Sent Events parser.
//!
//! Bytes arrive in arbitrary chunks (an event, a line, or even a UTF-8
//! character may be split across chunks); [`SseParser::feed`] buffers them
//! and returns every event completed by the chunk. Only the `event` and
//! `data` fields matter to the providers; `id`, `retry` and comments are
//! ignored.

/// One dispatched SSE event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, empty when the server sent none.
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Incremental parser; feed it chunks, collect events.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    event: String,
    data: Vec<String>,
    has_data: bool,
}

impl SseParser {
    /// Creates an empty parser.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one chunk and returns the events it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
            let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8_lossy(&line);
            self.line(&line, &mut out);
        }
        out
    }

    /// True when a partially received event is pending (bytes or fields not
    /// yet dispatched by a blank line).
    pub fn has_partial(&self) -> bool {
        !self.buf.is_empty() || self.has_data || !self.event.is_empty()
    }

    fn line(&mut self, line: &str, out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            if self.has_data {
                out.push(SseEvent {
                    event: std::mem::take(&mut self.event),
                    data: std::mem::take(&mut self.data).join("\n"),
                });
            }
            self.event.clear();
            self.data.clear();
            self.has_data = false;
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = value.to_string(),
            "data" => {
                self.data.push(value.to_string());
                self.has_data = true;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events_split_across_chunks() {
        let wire = "event: a\r\ndata: {\"x\":\n: comment\ndata: 1}\n\ndata: é\n\n";
        let bytes = wire.as_bytes();
        let mut p = SseParser::new();
        let mut events = Vec::new();
        for b in bytes.chunks(3) {
            events.extend(p.feed(b));
        }
        assert_eq!(
            events,
            vec![
                SseEvent {
                    event: "a".into(),
                    data: "{\"x\":\n1}".into()
                },
                SseEvent {
                    event: String::new(),
                    data: "é".into()
                },
            ]
        );
        assert!(!p.has_partial());
        p.feed(b"data: par");
        assert!(p.has_partial());
    }
}
