//! Round trips, size caps and the refusal of every malformed frame (including proptest's).

use super::*;
use crate::common::{
    ExternalHandleType, MemoryLayout, TextureDescriptor, TextureExtent, TextureFormat,
};
use proptest::prelude::*;

fn info() -> ExportInfo {
    ExportInfo {
        descriptor: TextureDescriptor::new(
            64,
            32,
            TextureFormat::Rgba8Unorm,
            &[TextureUsage::CopySrc],
        )
        .with_label("t"),
        extent: TextureExtent::default(),
        handle_type: ExternalHandleType::OpaqueFd,
        layout: MemoryLayout::Optimal,
        allocation_size: 8192,
        memory_type_index: 0,
        dedicated: true,
        planes: Vec::new(),
        device_uuid: [1; 16],
        driver_uuid: [2; 16],
    }
}

fn samples() -> Vec<Message> {
    vec![
        Message::Hello(Hello::new(
            Role::Consumer,
            [3; 16],
            [4; 16],
            vec![SyncMode::Host],
            "c".into(),
        )),
        Message::Reject {
            reason: RejectReason::Busy,
            detail: "no".into(),
        },
        Message::PoolSetup {
            generation: 1,
            sync: SyncMode::Host,
            slots: vec![info(), info()],
            ordered: false,
        },
        Message::FrameReady {
            id: FrameId {
                slot: 2,
                frame: u64::MAX - 1,
            },
            present_ns: 123,
            sent_ns: 456,
        },
        Message::FrameReleased {
            id: FrameId { slot: 1, frame: 7 },
            value: 8,
        },
        Message::SyncSetup {
            sync: SyncMode::Timeline,
        },
        Message::Bye {
            reason: "done".into(),
        },
        Message::BinarySyncSetup { slots: 3 },
        Message::PeerRingSetup {
            generation: 1,
            slots: vec![info(); 3],
        },
        Message::LinearRequest,
        Message::DmaBufImport { modifiers: vec![] },
        Message::DmaBufImport {
            modifiers: vec![1 << 56 | 4, u64::MAX],
        },
        Message::LinearSetup {
            slots: 3,
            row_pitch: 256,
            slot_bytes: 65536,
            allocation_size: 3 * 65536,
            memory_type_index: 1,
            timeline: true,
        },
    ]
}

fn enc(m: &Message) -> Vec<u8> {
    let mut v = Vec::new();
    encode_into(m, &mut v).unwrap();
    v
}

#[test]
fn every_variant_round_trips() {
    for m in samples() {
        assert_eq!(decode(&enc(&m)).unwrap(), m);
    }
}

#[test]
fn frame_messages_are_small_and_reuse_the_buffer() {
    let mut buf = Vec::with_capacity(64);
    encode_into(
        &Message::FrameReady {
            id: FrameId {
                slot: 15,
                frame: u64::MAX,
            },
            present_ns: u64::MAX,
            sent_ns: u64::MAX,
        },
        &mut buf,
    )
    .unwrap();
    assert!(
        buf.len() <= 40,
        "worst case (all varints at their longest): {}",
        buf.len()
    );
    // A realistic frame: an hour of 240 fps, timestamps a day after boot.
    let day_ns = 86_400 * 1_000_000_000u64;
    let ready = Message::FrameReady {
        id: FrameId {
            slot: 2,
            frame: 864_000,
        },
        present_ns: day_ns,
        sent_ns: day_ns + 5_000,
    };
    encode_into(&ready, &mut buf).unwrap();
    assert!(buf.len() < 32, "typical: {}", buf.len());
    let cap = buf.capacity();
    let ptr = buf.as_ptr();
    encode_into(
        &Message::FrameReleased {
            id: FrameId { slot: 1, frame: 99 },
            value: 100,
        },
        &mut buf,
    )
    .unwrap();
    assert_eq!(
        (buf.capacity(), buf.as_ptr()),
        (cap, ptr),
        "no reallocation in steady state"
    );
}

#[test]
fn truncated_wrong_length_and_trailing_bytes_are_rejected() {
    let f = enc(&samples()[2]);
    for cut in 0..f.len() {
        assert!(decode(&f[..cut]).is_err(), "cut at {cut}");
    }
    let mut long = f.clone();
    long.push(0);
    assert!(decode(&long).is_err());
    let mut trailing = f.clone();
    trailing.push(0);
    let n = (trailing.len() - HEADER_BYTES) as u32;
    trailing[..4].copy_from_slice(&n.to_le_bytes());
    assert!(matches!(decode(&trailing), Err(Error::Protocol(_))));
    let mut huge = f;
    huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(decode(&huge).is_err());
    assert!(decode(&vec![0; MAX_MESSAGE_BYTES + 1]).is_err());
}

#[test]
fn other_versions_and_strangers_are_named() {
    let mut h = Hello::new(
        Role::Producer,
        [0; 16],
        [0; 16],
        vec![SyncMode::Host],
        "p".into(),
    );
    h.version = 9;
    assert!(matches!(
        decode(&enc(&Message::Hello(h.clone()))),
        Err(Error::VersionMismatch {
            peer: 9,
            ours: PROTOCOL_VERSION
        })
    ));
    // A future Hello whose body we cannot parse still yields its version.
    let mut future = vec![0u8];
    future.extend_from_slice(&MAGIC);
    future.push(7); // version 7 as varint
    future.extend_from_slice(&[0xff; 5]);
    let mut frame = (future.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&future);
    assert!(matches!(
        decode(&frame),
        Err(Error::VersionMismatch { peer: 7, .. })
    ));
    h.version = PROTOCOL_VERSION;
    h.magic = *b"HTTP";
    assert!(matches!(
        decode(&enc(&Message::Hello(h))),
        Err(Error::Protocol(_))
    ));
}

#[test]
fn out_of_range_fields_are_rejected() {
    let bad = [
        Message::FrameReady {
            id: FrameId {
                slot: MAX_SLOTS as u32,
                frame: 0,
            },
            present_ns: 0,
            sent_ns: 0,
        },
        Message::PoolSetup {
            generation: 0,
            sync: SyncMode::Host,
            slots: vec![],
            ordered: false,
        },
        Message::PoolSetup {
            generation: 0,
            sync: SyncMode::Host,
            slots: vec![info(); MAX_SLOTS + 1],
            ordered: false,
        },
        Message::Bye {
            reason: "x".repeat(MAX_STRING + 1),
        },
        Message::PoolSetup {
            generation: 0,
            sync: SyncMode::Host,
            slots: vec![ExportInfo {
                allocation_size: 0,
                ..info()
            }],
            ordered: false,
        },
        Message::PoolSetup {
            generation: 0,
            sync: SyncMode::Host,
            slots: vec![{
                let mut i = info();
                i.descriptor.width = 0;
                i
            }],
            ordered: false,
        },
    ];
    let linear = |slots, row_pitch, slot_bytes, allocation_size| Message::LinearSetup {
        slots,
        row_pitch,
        slot_bytes,
        allocation_size,
        memory_type_index: 0,
        timeline: false,
    };
    let bad = bad.into_iter().chain([
        linear(0, 256, 4096, 4096),
        linear(MAX_SLOTS as u32 + 1, 256, 4096, 1 << 20),
        linear(3, 0, 4096, 1 << 20),
        linear(3, 8192, 4096, 1 << 20),
        linear(3, 256, 4096, 3 * 4096 - 1),
        linear(2, 256, u64::MAX / 2 + 1, u64::MAX),
    ]);
    for m in bad {
        assert!(matches!(decode(&enc(&m)), Err(Error::Protocol(_))), "{m:?}");
    }
}

/// A payload whose sequence length claims far more elements than the caps allow is refused
/// on the length alone (before decoding or preallocating the elements).
#[test]
fn lying_sequence_lengths_are_refused() {
    let varint = |mut v: u64, out: &mut Vec<u8>| loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            break;
        }
        out.push(b | 0x80);
    };
    // PoolSetup (variant 2), generation 1, Host, then 60,000 "slots" of padding.
    let mut payload = vec![2, 1, 0];
    varint(60_000, &mut payload);
    payload.resize(MAX_MESSAGE_BYTES - HEADER_BYTES, 1);
    let mut frame = (payload.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&payload);
    assert!(matches!(decode(&frame), Err(Error::Protocol(_))));
    // A Hello of our version listing a million sync modes.
    let mut payload = vec![0];
    payload.extend_from_slice(&MAGIC);
    payload.push(PROTOCOL_VERSION as u8);
    payload.extend_from_slice(&[0, 1]); // role, pid
    payload.extend_from_slice(&[0; 32]); // UUIDs
    varint(1_000_000, &mut payload);
    payload.resize(MAX_MESSAGE_BYTES - HEADER_BYTES, 0);
    let mut frame = (payload.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&payload);
    assert!(matches!(decode(&frame), Err(Error::Protocol(_))));
    // Exactly at the caps is fine.
    let mut h = Hello::new(Role::Producer, [0; 16], [0; 16], vec![], "p".into());
    h.sync_modes = vec![SyncMode::Host; MAX_SYNC_MODES];
    assert!(decode(&enc(&Message::Hello(h))).is_ok());
    let full = Message::PoolSetup {
        generation: 0,
        sync: SyncMode::Host,
        slots: vec![info(); MAX_SLOTS],
        ordered: true,
    };
    assert_eq!(decode(&enc(&full)).unwrap(), full);
    let most = Message::DmaBufImport {
        modifiers: vec![7; MAX_MODIFIERS],
    };
    assert_eq!(decode(&enc(&most)).unwrap(), most);
    let too_many = Message::DmaBufImport {
        modifiers: vec![7; MAX_MODIFIERS + 1],
    };
    assert!(matches!(decode(&enc(&too_many)), Err(Error::Protocol(_))));
}

/// Decodes `frame` and checks the contract: a valid message, or a protocol-level error.
fn decode_checked(frame: &[u8]) -> std::result::Result<(), TestCaseError> {
    match decode(frame) {
        Ok(m) => prop_assert!(m.validate().is_ok(), "decode returned an invalid {m:?}"),
        Err(Error::Protocol(_)) | Err(Error::VersionMismatch { .. }) => {}
        Err(other) => prop_assert!(false, "unexpected error kind: {other}"),
    }
    Ok(())
}

fn framed(payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_le_bytes().to_vec();
    f.extend_from_slice(payload);
    f
}

// 20,000 cases in all (5,000 per strategy), a couple of seconds in a debug build.
proptest! {
    #![proptest_config(ProptestConfig { cases: 5_000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_checked(&bytes)?;
        // Also with a consistent length prefix, so postcard sees the random payload.
        decode_checked(&framed(&bytes))?;
        // And behind a valid variant tag, to reach deeper into each variant.
        for tag in 0u8..8 {
            let mut p = vec![tag];
            p.extend_from_slice(&bytes);
            decode_checked(&framed(&p))?;
        }
    }

    #[test]
    fn bit_flipped_messages_never_panic(
        which in 0usize..7,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
    ) {
        let mut f = enc(&samples()[which]);
        for (pos, val) in flips {
            let i = pos % f.len();
            f[i] ^= val;
        }
        decode_checked(&f)?;
        // Re-frame the mutated payload with a correct length.
        decode_checked(&framed(&f[HEADER_BYTES..]))?;
    }

    #[test]
    fn truncated_and_spliced_messages_never_panic(
        a in 0usize..7,
        b in 0usize..7,
        cut_a in any::<usize>(),
        cut_b in any::<usize>(),
    ) {
        let fa = enc(&samples()[a]);
        let fb = enc(&samples()[b]);
        let ca = cut_a % (fa.len() + 1);
        let cb = cut_b % (fb.len() + 1);
        decode_checked(&fa[..ca])?;
        decode_checked(&framed(&fa[HEADER_BYTES.min(ca)..ca]))?;
        // The head of one message joined to the tail of another, framed consistently.
        let mut spliced = fa[HEADER_BYTES.min(ca)..ca].to_vec();
        spliced.extend_from_slice(&fb[HEADER_BYTES.max(cb)..]);
        decode_checked(&framed(&spliced))?;
    }

    #[test]
    fn huge_and_inconsistent_length_prefixes_never_panic(
        which in 0usize..7,
        prefix in prop_oneof![
            any::<u32>(),
            (MAX_MESSAGE_BYTES as u32 - 8)..(MAX_MESSAGE_BYTES as u32 + 8),
            Just(u32::MAX),
        ],
        extra in 0usize..64,
    ) {
        let mut f = enc(&samples()[which]);
        f[..HEADER_BYTES].copy_from_slice(&prefix.to_le_bytes());
        decode_checked(&f)?;
        f.resize(f.len() + extra, 0xff);
        decode_checked(&f)?;
    }
}
