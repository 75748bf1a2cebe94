//! An acknowledging link for byte streams that pass through a relay holding small writes
//! back until the previous ones are acknowledged.
//!
//! Slurm's `srun` forwards a task's stdout over a TCP connection from `slurmstepd` that keeps
//! Nagle's algorithm on. When the agent writes several small messages in a row (a notebook
//! cell's busy/result/idle messages, a call's reply after its stream header), each one after
//! the first waits until `srun` acknowledges the last, and `srun`, sending nothing back,
//! delays its ACK by up to 40 ms. The same holds the other way, for seer's writes that
//! `srun` forwards to the task's stdin. Measured on the tests' cluster: three 10-byte writes
//! 2 ms apart take 6.5 ms to arrive directly and 44 ms through `srun`, either way.
//!
//! A TCP ACK rides along with any data going the other way. So on such a link each side
//! answers what it reads with a one-byte acknowledgement, which the relay forwards at once
//! and so acknowledges what came. An acknowledgement is itself a small write left waiting
//! for an ACK and would hold back its sender's next message, so while the link is busy
//! (data went either way within [`HOT`]) acknowledgements are answered too, at most one per
//! [`GAP`] per side. A quiet link carries nothing.
//!
//! Measured through `srun` on the tests' cluster (`cargo bench --bench slurm`, a notebook
//! cell `i+1`): +42 ms over a local sandbox without acknowledgements; +44 ms answering
//! data only, or acknowledgements to a fixed depth (the last one stalls the next message);
//! +3.9 ms (median) this way. Answering at once instead of pacing made cells slower on two
//! cores (the four processes relaying kept them busy).
//!
//! For the ends to tell acknowledgements from yamux bytes, both directions are framed
//! ([`LinkCodec`]).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, DuplexStream};
use tokio::sync::Notify;
use tokio_util::codec::{Decoder, Encoder, FramedRead, FramedWrite};
use tokio_util::io::StreamReader;

/// How much one frame carries at most.
const CHUNK: usize = 64 * 1024;
/// How long after the last data acknowledgements are answered.
const HOT: Duration = Duration::from_millis(50);
/// The least time between two acknowledgements answering acknowledgements.
const GAP: Duration = Duration::from_millis(1);

/// What travels on the link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Data(Bytes),
    /// An acknowledgement.
    Ack,
}

/// A frame is a tag byte: 0 for data, followed by a big-endian u32 length and the bytes;
/// 1 alone for an acknowledgement.
#[derive(Debug, Default)]
pub struct LinkCodec;

impl Decoder for LinkCodec {
    type Item = Frame;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> std::io::Result<Option<Frame>> {
        let Some(&tag) = src.first() else {
            return Ok(None);
        };
        match tag {
            0 => {
                let Some(len) = src.get(1..5) else {
                    return Ok(None);
                };
                let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
                if len > CHUNK {
                    return Err(std::io::Error::other(format!(
                        "a frame of {len} bytes on the link (at most {CHUNK})"
                    )));
                }
                if src.len() < 5 + len {
                    src.reserve(5 + len - src.len());
                    return Ok(None);
                }
                src.advance(5);
                Ok(Some(Frame::Data(src.split_to(len).freeze())))
            }
            1 => {
                src.advance(1);
                Ok(Some(Frame::Ack))
            }
            other => Err(std::io::Error::other(format!(
                "unknown frame tag {other} on the link"
            ))),
        }
    }
}

impl Encoder<Frame> for LinkCodec {
    type Error = std::io::Error;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> std::io::Result<()> {
        match frame {
            Frame::Data(b) => {
                let len = u32::try_from(b.len()).map_err(std::io::Error::other)?;
                dst.reserve(5 + b.len());
                dst.put_u8(0);
                dst.put_u32(len);
                dst.extend_from_slice(&b);
            }
            Frame::Ack => dst.put_u8(1),
        }
        Ok(())
    }
}

/// When to send the next acknowledgement.
struct Timing {
    /// Due at this time, if one is due.
    due: Option<Instant>,
    /// Data last went either way.
    last_data: Instant,
    /// The last acknowledgement went.
    last_ack: Instant,
}

struct Acks {
    timing: Mutex<Timing>,
    /// Wakes the writer when `due` changed.
    changed: Notify,
}

impl Acks {
    fn update(&self, f: impl FnOnce(&mut Timing, Instant)) {
        if let Ok(mut t) = self.timing.lock() {
            f(&mut t, Instant::now());
        }
    }

    /// Data came: acknowledge it now.
    fn data_read(&self) {
        self.update(|t, now| {
            t.last_data = now;
            t.due = Some(now);
        });
        self.changed.notify_one();
    }

    /// An acknowledgement came: answer it while the link is busy, paced.
    fn ack_read(&self) {
        self.update(|t, now| {
            if now.duration_since(t.last_data) < HOT && t.due.is_none() {
                t.due = Some(now.max(t.last_ack + GAP));
            }
        });
        self.changed.notify_one();
    }

    fn due(&self) -> Option<Instant> {
        self.timing.lock().ok().and_then(|t| t.due)
    }
}

/// `(reader, writer)` to hand to yamux in place of the raw `input` and `output`: the reader
/// yields the other side's bytes, the writer frames what is written, and frames read are
/// acknowledged. A task on the current runtime moves the writes; it ends when the writer
/// is dropped or the link breaks.
pub fn acknowledged(
    input: impl AsyncRead + Send + Unpin + 'static,
    output: impl AsyncWrite + Send + Unpin + 'static,
) -> (impl AsyncRead + Send + Unpin, DuplexStream) {
    let now = Instant::now();
    let acks = Arc::new(Acks {
        timing: Mutex::new(Timing {
            due: None,
            last_data: now,
            last_ack: now,
        }),
        changed: Notify::new(),
    });
    let reading = acks.clone();
    let frames = FramedRead::new(input, LinkCodec).filter_map(move |f| {
        let item = match f {
            Ok(Frame::Data(b)) => {
                reading.data_read();
                Some(Ok::<_, std::io::Error>(b))
            }
            Ok(Frame::Ack) => {
                reading.ack_read();
                None
            }
            Err(e) => Some(Err(e)),
        };
        std::future::ready(item)
    });
    let (ours, theirs) = tokio::io::duplex(CHUNK);
    tokio::spawn(write_frames(theirs, output, acks));
    (StreamReader::new(Box::pin(frames)), ours)
}

/// Sends what yamux wrote as data frames, and acknowledgements when due.
async fn write_frames(mut from: DuplexStream, to: impl AsyncWrite + Unpin, acks: Arc<Acks>) {
    let mut sink = FramedWrite::new(to, LinkCodec);
    let mut buf = vec![0u8; CHUNK];
    loop {
        let due = acks.due();
        let frame = if due.is_some_and(|d| d <= Instant::now()) {
            // Not through a timer: tokio's are rounded up to whole milliseconds.
            Frame::Ack
        } else {
            let wait = async {
                match due {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                n = from.read(&mut buf) => match n {
                    Ok(0) | Err(_) => break,
                    Ok(n) => Frame::Data(Bytes::copy_from_slice(&buf[..n])),
                },
                _ = wait => Frame::Ack,
                _ = acks.changed.notified() => continue,
            }
        };
        match frame {
            Frame::Ack => acks.update(|t, now| {
                t.due = None;
                t.last_ack = now;
            }),
            Frame::Data(_) => acks.update(|t, now| t.last_data = now),
        }
        if let Err(e) = sink.send(frame).await {
            tracing::debug!("writing to the link: {e}");
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::AsyncWriteExt;

    use super::*;

    /// Frames decode to what was encoded, split anywhere.
    #[test]
    fn frames_round_trip_in_pieces() {
        let frames = vec![
            Frame::Data(Bytes::from_static(b"hello")),
            Frame::Ack,
            Frame::Data(Bytes::new()),
            Frame::Ack,
            Frame::Data(Bytes::from(vec![7u8; 3000])),
        ];
        let mut wire = BytesMut::new();
        for f in &frames {
            LinkCodec.encode(f.clone(), &mut wire).unwrap();
        }
        for cut in [1, 3, 7, 100, 2000] {
            let mut src = BytesMut::new();
            let mut got = Vec::new();
            for piece in wire.chunks(cut) {
                src.extend_from_slice(piece);
                while let Some(f) = LinkCodec.decode(&mut src).unwrap() {
                    got.push(f);
                }
            }
            assert_eq!(got, frames, "cut every {cut} bytes");
        }
        let err = LinkCodec
            .decode(&mut BytesMut::from(&[2u8][..]))
            .unwrap_err();
        assert_eq!(err.to_string(), "unknown frame tag 2 on the link");
    }

    /// Bytes arrive whole and in order; data is acknowledged at once, acknowledgements only
    /// while the link is busy.
    #[tokio::test]
    async fn bytes_arrive_whole_and_acknowledgements_are_answered_while_busy() {
        // A's raw input and output are pipes this test plays the other end of.
        let (mut to_a, a_in) = tokio::io::duplex(1 << 20);
        let (a_out, from_a) = tokio::io::duplex(1 << 20);
        let (mut a_read, mut a_write) = acknowledged(a_in, a_out);
        let mut from_a = FramedRead::new(from_a, LinkCodec);
        let send = |f: Frame| {
            let mut b = BytesMut::new();
            LinkCodec.encode(f, &mut b).unwrap();
            b
        };

        let sent: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        a_write.write_all(&sent).await.unwrap();
        let mut got = Vec::new();
        while got.len() < sent.len() {
            match from_a.next().await.unwrap().unwrap() {
                Frame::Data(b) => got.extend_from_slice(&b),
                ack => panic!("{ack:?} before A read anything"),
            }
        }
        assert_eq!(got, sent);

        to_a.write_all(&send(Frame::Data(Bytes::from_static(b"reply"))))
            .await
            .unwrap();
        let mut five = [0u8; 5];
        a_read.read_exact(&mut five).await.unwrap();
        assert_eq!(&five, b"reply");
        assert_eq!(from_a.next().await.unwrap().unwrap(), Frame::Ack);
        // While data went within HOT, acknowledgements are answered, GAP apart at least.
        // They are read (and answered) while the reader is polled, as yamux always does,
        // and yield no bytes.
        let mut none = [0u8; 1];
        let mut answered = vec![];
        for _ in 0..3 {
            // Keep the link busy however slow this machine is.
            a_write.write_all(b"busy").await.unwrap();
            assert_eq!(
                from_a.next().await.unwrap().unwrap(),
                Frame::Data(Bytes::from_static(b"busy"))
            );
            to_a.write_all(&send(Frame::Ack)).await.unwrap();
            let read = tokio::time::timeout(Duration::from_millis(5), a_read.read(&mut none));
            assert!(read.await.is_err(), "an acknowledgement gave bytes");
            assert_eq!(from_a.next().await.unwrap().unwrap(), Frame::Ack);
            answered.push(Instant::now());
        }
        // Three answers span two gaps (one is generous: scheduling jitter).
        assert!(answered[2] - answered[0] >= GAP, "{answered:?}");
        // On a quiet link they are not: the next frame from A is its next data.
        tokio::time::sleep(HOT * 2).await;
        to_a.write_all(&send(Frame::Ack)).await.unwrap();
        let read = tokio::time::timeout(HOT, a_read.read(&mut none));
        assert!(read.await.is_err(), "an acknowledgement gave bytes");
        a_write.write_all(b"next").await.unwrap();
        assert_eq!(
            from_a.next().await.unwrap().unwrap(),
            Frame::Data(Bytes::from_static(b"next"))
        );
    }
}
