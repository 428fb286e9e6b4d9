//! Framing: `u32 little-endian length | payload` (DESIGN §8).
//!
//! [`FrameDecoder`] is a plain per-connection state machine: it checks every
//! length prefix against `max_frame_bytes` *before* reserving anything, grows
//! a frame's buffer only as its bytes arrive, and keeps a partial frame across
//! readiness events. It must never read a socket or allocate on the word of a
//! length prefix.

/// Bytes of the length prefix.
pub const FRAME_HEADER_BYTES: usize = 4;
/// Most a frame's buffer grows by at once, so memory accounting checked
/// after each read never lags the bytes really held by more than this.
pub const MAX_GROWTH_BYTES: usize = 1024 * 1024;

/// Why a byte stream is not a valid sequence of frames. Always the sender's fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error(
        "frame length prefix announces {len} bytes, over the limit of {max} (max_frame_bytes)"
    )]
    TooLarge { len: u64, max: usize },
}

/// Splits a byte stream into frame payloads.
#[derive(Debug)]
pub struct FrameDecoder {
    max_frame_bytes: usize,
    header: [u8; FRAME_HEADER_BYTES],
    header_have: usize,
    /// `Some(len)` once the header is complete: the payload being filled.
    body_len: Option<usize>,
    body: Vec<u8>,
}

impl FrameDecoder {
    pub fn new(max_frame_bytes: usize) -> FrameDecoder {
        FrameDecoder {
            max_frame_bytes,
            header: [0; FRAME_HEADER_BYTES],
            header_have: 0,
            body_len: None,
            body: Vec::new(),
        }
    }

    /// Consumes `bytes`, appending every completed payload to `frames`.
    /// After an error the stream is unusable: close the connection.
    pub fn push(&mut self, mut bytes: &[u8], frames: &mut Vec<Vec<u8>>) -> Result<(), FrameError> {
        while let Some(frame) = self.next_frame(&mut bytes)? {
            frames.push(frame);
        }
        Ok(())
    }

    /// Consumes `bytes` up to the end of the next completed payload and
    /// returns it, or consumes them all and returns `None`. Lets the caller
    /// act on a frame (e.g. raise the cap after a handshake) before the next.
    pub fn next_frame(&mut self, bytes: &mut &[u8]) -> Result<Option<Vec<u8>>, FrameError> {
        while !bytes.is_empty() {
            match self.body_len {
                None => {
                    let take = (FRAME_HEADER_BYTES - self.header_have).min(bytes.len());
                    let (head, rest) = bytes.split_at(take);
                    self.header[self.header_have..self.header_have + take].copy_from_slice(head);
                    self.header_have += take;
                    *bytes = rest;
                    if self.header_have == FRAME_HEADER_BYTES {
                        let len = u32::from_le_bytes(self.header);
                        // Checked before any allocation: a 1 GiB prefix costs nothing.
                        if u64::from(len) > self.max_frame_bytes as u64 {
                            return Err(FrameError::TooLarge {
                                len: u64::from(len),
                                max: self.max_frame_bytes,
                            });
                        }
                        self.header_have = 0;
                        self.body_len = Some(len as usize);
                    }
                }
                Some(len) => {
                    let take = (len - self.body.len()).min(bytes.len());
                    let (part, rest) = bytes.split_at(take);
                    // Memory follows the bytes actually received: at most
                    // double them (or MAX_GROWTH_BYTES more), never past
                    // the announced length.
                    let need = self.body.len() + take;
                    let cap = self.body.capacity();
                    if need > cap {
                        let grown = need.max(cap + cap.min(MAX_GROWTH_BYTES)).min(len);
                        self.body.reserve_exact(grown - self.body.len());
                    }
                    self.body.extend_from_slice(part);
                    *bytes = rest;
                }
            }
            if self.body_len == Some(self.body.len()) {
                self.body_len = None;
                return Ok(Some(std::mem::take(&mut self.body)));
            }
        }
        Ok(None)
    }

    /// Memory held by the frame in progress (for the buffer budget).
    pub fn buffered_bytes(&self) -> usize {
        self.header_have + self.body.capacity()
    }

    /// Changes the cap for frames not yet started (raised once the handshake completes).
    pub fn set_max_frame_bytes(&mut self, max_frame_bytes: usize) {
        self.max_frame_bytes = max_frame_bytes;
    }
}

/// Why a payload cannot be framed. A local programming or config error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("payload of {len} bytes exceeds max_frame_bytes {max}; it cannot be sent")]
pub struct OversizedPayload {
    pub len: usize,
    pub max: usize,
}

/// `payload` with its length prefix.
pub fn encode_frame(payload: &[u8], max_frame_bytes: usize) -> Result<Vec<u8>, OversizedPayload> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|&l| l as usize <= max_frame_bytes)
        .ok_or(OversizedPayload {
            len: payload.len(),
            max: max_frame_bytes,
        })?;
    let mut frame = Vec::with_capacity(FRAME_HEADER_BYTES + payload.len());
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(payload);
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(chunks: &[&[u8]], max: usize) -> Result<Vec<Vec<u8>>, FrameError> {
        let mut decoder = FrameDecoder::new(max);
        let mut frames = Vec::new();
        for chunk in chunks {
            decoder.push(chunk, &mut frames)?;
        }
        Ok(frames)
    }

    #[test]
    fn one_gib_length_prefix_is_refused_without_allocating() {
        let mut decoder = FrameDecoder::new(1 << 20);
        let mut frames = Vec::new();
        let prefix = (1u32 << 30).to_le_bytes();
        assert_eq!(
            decoder.push(&prefix, &mut frames),
            Err(FrameError::TooLarge {
                len: 1 << 30,
                max: 1 << 20
            })
        );
        assert!(frames.is_empty());
        assert_eq!(decoder.body.capacity(), 0);
    }

    #[test]
    fn partial_frame_is_kept_across_pushes() {
        let frame = encode_frame(b"hello", 64).unwrap();
        let mut decoder = FrameDecoder::new(64);
        let mut frames = Vec::new();
        decoder.push(&frame[..6], &mut frames).unwrap();
        assert!(frames.is_empty());
        assert_eq!(decoder.buffered_bytes(), 2);
        decoder.push(&frame[6..], &mut frames).unwrap();
        assert_eq!(frames, vec![b"hello".to_vec()]);
        assert_eq!(decoder.buffered_bytes(), 0);
    }

    #[test]
    fn a_frame_in_progress_holds_at_most_twice_what_arrived_and_never_past_its_length() {
        let len = 100_000usize;
        let mut decoder = FrameDecoder::new(len);
        let mut frames = Vec::new();
        decoder
            .push(&(len as u32).to_le_bytes(), &mut frames)
            .unwrap();
        let mut arrived = 0;
        while arrived < len - 1 {
            let chunk = 7_000.min(len - 1 - arrived);
            decoder.push(&vec![0; chunk], &mut frames).unwrap();
            arrived += chunk;
            let held = decoder.buffered_bytes();
            assert!(held <= (2 * arrived).min(arrived + MAX_GROWTH_BYTES).min(len));
        }
        decoder.push(&[0], &mut frames).unwrap();
        assert_eq!(frames.len(), 1);
    }

    #[test]
    fn the_cap_applies_to_frames_not_yet_started() {
        let frame = encode_frame(&[1; 100], 100).unwrap();
        let mut decoder = FrameDecoder::new(64);
        let mut frames = Vec::new();
        assert!(decoder.push(&frame, &mut frames).is_err());
        let mut decoder = FrameDecoder::new(64);
        decoder.set_max_frame_bytes(100);
        decoder.push(&frame, &mut frames).unwrap();
        assert_eq!(frames.len(), 1);
    }

    #[test]
    fn empty_payload_and_exact_limit_are_frames() {
        let mut stream = encode_frame(b"", 3).unwrap();
        stream.extend(encode_frame(b"abc", 3).unwrap());
        assert_eq!(
            decode_all(&[&stream], 3).unwrap(),
            vec![Vec::new(), b"abc".to_vec()]
        );
        assert!(encode_frame(b"abcd", 3).is_err());
    }

    proptest! {
        #[test]
        fn any_split_of_a_stream_yields_the_same_frames(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8),
            cuts in proptest::collection::vec(any::<usize>(), 0..20),
        ) {
            let stream: Vec<u8> = payloads.iter().flat_map(|p| encode_frame(p, 1024).unwrap()).collect();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (stream.len() + 1)).collect();
            cuts.push(0);
            cuts.push(stream.len());
            cuts.sort_unstable();
            let chunks: Vec<&[u8]> = cuts.windows(2).map(|w| &stream[w[0]..w[1]]).collect();
            prop_assert_eq!(decode_all(&chunks, 1024).unwrap(), payloads);
        }
    }
}
