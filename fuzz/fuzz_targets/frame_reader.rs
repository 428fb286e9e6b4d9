//! `net::frame::FrameDecoder`: any split of a byte stream yields the same
//! frames (or the same error); no frame exceeds the cap; the buffer held
//! never exceeds the cap plus the header; re-framing the frames gives back
//! the bytes consumed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use timecoin::net::frame::{encode_frame, FrameDecoder, FrameError, FRAME_HEADER_BYTES};

fuzz_target!(|data: &[u8]| {
    let Some((&[cap_byte, cut_byte], stream)) = data.split_first_chunk::<2>() else {
        return;
    };
    // Caps from 0 to 4 KiB keep frames reachable by the fuzzer.
    let max = usize::from(cap_byte) * 16;
    let cut = usize::from(cut_byte).max(1);

    let mut whole = FrameDecoder::new(max);
    let mut whole_frames = Vec::new();
    let whole_result = whole.push(stream, &mut whole_frames);

    let mut split = FrameDecoder::new(max);
    let mut split_frames = Vec::new();
    let mut split_result: Result<(), FrameError> = Ok(());
    for chunk in stream.chunks(cut) {
        split_result = split.push(chunk, &mut split_frames);
        assert!(split.buffered_bytes() <= max + FRAME_HEADER_BYTES);
        if split_result.is_err() {
            break;
        }
    }
    assert_eq!(whole_result, split_result);
    assert_eq!(whole_frames, split_frames);
    if let Err(FrameError::TooLarge { len, max: m }) = whole_result {
        assert!(len > m as u64);
        assert_eq!(m, max);
    }

    let mut reframed = Vec::new();
    for frame in &whole_frames {
        assert!(frame.len() <= max);
        reframed.extend(encode_frame(frame, max).expect("a decoded frame fits its cap"));
    }
    assert_eq!(&stream[..reframed.len()], &reframed[..]);
    if whole_result.is_ok() {
        let rest = stream.len() - reframed.len();
        assert!(whole.buffered_bytes() <= rest.max(FRAME_HEADER_BYTES) + FRAME_HEADER_BYTES);
    }
});
