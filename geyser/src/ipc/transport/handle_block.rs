//! The handle block of the Windows transport: named pipes cannot carry handles beside a
//! message the way SCM_RIGHTS does, so the sender duplicates each NT handle into the receiver
//! and appends the new values after the protocol frame. Pure byte layout, unit-tested on every
//! platform; `pipe` (Windows) uses it.
//!
//! One pipe message = one [`protocol`](crate::ipc::wire) frame, byte for byte what the Unix
//! socket carries, then `count: u8` and `count` little-endian `u64` handle values.

use crate::ipc::wire::{HEADER_BYTES, MAX_FDS_PER_MESSAGE, MAX_MESSAGE_BYTES};
use crate::{Error, Result};

/// Largest handle block: the count byte and [`MAX_FDS_PER_MESSAGE`] values.
pub const MAX_BLOCK_BYTES: usize = 1 + 8 * MAX_FDS_PER_MESSAGE;
/// Largest pipe message: a frame of [`MAX_MESSAGE_BYTES`] and the largest handle block.
pub const MAX_PIPE_MESSAGE_BYTES: usize = MAX_MESSAGE_BYTES + MAX_BLOCK_BYTES;

/// Appends the handle block for `values` to `out` (which holds an encoded frame).
pub fn append(out: &mut Vec<u8>, values: &[u64]) -> Result<()> {
    if values.len() > MAX_FDS_PER_MESSAGE {
        return Err(Error::InvalidArgument {
            what: "handles",
            reason: format!(
                "{} handles in one message, limit {MAX_FDS_PER_MESSAGE}",
                values.len()
            ),
        });
    }
    out.push(values.len() as u8);
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    Ok(())
}

/// Splits one received pipe message into its protocol frame and its handle values. The frame
/// is not decoded here ([`crate::ipc::wire::decode`] does that); a block whose length does not
/// match its count, or more than [`MAX_FDS_PER_MESSAGE`] values, is a protocol error.
pub fn split(message: &[u8]) -> Result<(&[u8], Vec<u64>)> {
    if message.len() < HEADER_BYTES {
        return Err(Error::Protocol(format!(
            "pipe message of {} bytes has no length prefix",
            message.len()
        )));
    }
    let declared = u32::from_le_bytes([message[0], message[1], message[2], message[3]]) as usize;
    let frame_len = HEADER_BYTES
        .checked_add(declared)
        .filter(|n| *n <= MAX_MESSAGE_BYTES && *n < message.len())
        .ok_or_else(|| {
            Error::Protocol(format!(
                "pipe message of {} bytes cannot hold a frame of {declared} bytes and a handle block",
                message.len()
            ))
        })?;
    let (frame, block) = message.split_at(frame_len);
    let count = block[0] as usize;
    if count > MAX_FDS_PER_MESSAGE {
        return Err(Error::Protocol(format!(
            "{count} handles in one message, limit {MAX_FDS_PER_MESSAGE}"
        )));
    }
    let values = &block[1..];
    if values.len() != 8 * count {
        return Err(Error::Protocol(format!(
            "handle block announces {count} handles but has {} bytes",
            values.len()
        )));
    }
    let values = values
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect();
    Ok((frame, values))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipc::wire::{decode, encode_into, Message};

    fn frame(msg: &Message) -> Vec<u8> {
        let mut out = Vec::new();
        encode_into(msg, &mut out).unwrap();
        out
    }

    #[test]
    fn frame_and_handles_round_trip() {
        let msg = Message::Bye {
            reason: "done".into(),
        };
        let mut out = frame(&msg);
        let unix_bytes = out.clone();
        append(&mut out, &[0x1234, u64::MAX]).unwrap();
        let (f, values) = split(&out).unwrap();
        assert_eq!(
            f,
            &unix_bytes[..],
            "the frame is what the Unix socket carries"
        );
        assert_eq!(decode(f).unwrap(), msg);
        assert_eq!(values, vec![0x1234, u64::MAX]);
    }

    #[test]
    fn empty_block_round_trips() {
        let mut out = frame(&Message::Bye { reason: "x".into() });
        append(&mut out, &[]).unwrap();
        assert!(split(&out).unwrap().1.is_empty());
    }

    #[test]
    fn too_many_handles_are_refused_both_ways() {
        let mut out = frame(&Message::Bye { reason: "x".into() });
        let many = vec![1u64; MAX_FDS_PER_MESSAGE + 1];
        assert!(matches!(
            append(&mut out.clone(), &many),
            Err(Error::InvalidArgument { .. })
        ));
        out.push((MAX_FDS_PER_MESSAGE + 1) as u8);
        out.extend(std::iter::repeat_n(0u8, 8 * (MAX_FDS_PER_MESSAGE + 1)));
        assert!(matches!(split(&out), Err(Error::Protocol(_))));
    }

    #[test]
    fn malformed_messages_are_protocol_errors() {
        let good = {
            let mut out = frame(&Message::Bye { reason: "x".into() });
            append(&mut out, &[7]).unwrap();
            out
        };
        // Truncated anywhere: never a panic, always a protocol error.
        for cut in 0..good.len() {
            assert!(
                matches!(split(&good[..cut]), Err(Error::Protocol(_))),
                "cut at {cut}"
            );
        }
        // Extra byte after the block.
        let mut long = good.clone();
        long.push(0);
        assert!(matches!(split(&long), Err(Error::Protocol(_))));
        // Huge length prefix.
        let mut huge = good;
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(split(&huge), Err(Error::Protocol(_))));
    }
}
