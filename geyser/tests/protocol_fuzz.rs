//! Property-based fuzzing of the wire decoder, run in CI: 100,000 generated and mutated cases
//! (30,000 generated messages; 30,000 random byte strings, each decoded framed and unframed;
//! 30,000 mutated messages, each decoded in up to five mutated forms; 10,000 huge or
//! inconsistent length prefixes), well over 100,000 frames in all
//! — random bytes, truncations, huge length prefixes, wrong versions, valid-shaped messages
//! with out-of-range fields. The decoder must never panic, must answer every bad frame with
//! `Error::Protocol` (or `VersionMismatch`), and no single allocation while decoding may exceed
//! a small bound (a counting global allocator watches). The cargo-fuzz target in `fuzz/` runs
//! the same decoder coverage-guided for longer.

// Run in Linux CI only (the protocol itself is platform-independent and also used on Windows).
#![cfg(target_os = "linux")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use geyser::common::RejectReason;
use geyser::common::{
    ExportInfo, ExternalHandleType, MemoryLayout, TextureDescriptor, TextureDimension,
    TextureExtent, TextureFormat, TextureUsage,
};
use geyser::ipc::wire::{
    decode, encode_into, Hello, Message, Role, MAX_MESSAGE_BYTES, MAX_SLOTS, MAX_STRING,
};
use geyser::ipc::{FrameId, SyncMode};
use geyser::Error;
use proptest::prelude::*;

/// Largest single allocation made while `MEASURING` was set on the allocating thread.
static PEAK_ALLOCATION: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    static MEASURING: Cell<bool> = const { Cell::new(false) };
}

struct Counting;

// SAFETY: forwards every call to the system allocator unchanged; only records sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if MEASURING.with(|m| m.get()) {
            PEAK_ALLOCATION.fetch_max(layout.size(), Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if MEASURING.with(|m| m.get()) {
            PEAK_ALLOCATION.fetch_max(new_size, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// No decode may allocate more than this at once: a frame is at most 64 KiB, so anything near
/// this would mean a length field was trusted.
const ALLOCATION_BOUND: usize = 2 * MAX_MESSAGE_BYTES;

/// Decodes under the allocation watch and checks the error kind.
fn checked_decode(frame: &[u8]) -> Option<Message> {
    MEASURING.with(|m| m.set(true));
    let r = decode(frame);
    MEASURING.with(|m| m.set(false));
    let peak = PEAK_ALLOCATION.load(Ordering::Relaxed);
    assert!(
        peak <= ALLOCATION_BOUND,
        "a decode allocated {peak} bytes at once"
    );
    match r {
        Ok(m) => {
            m.validate().expect("decode only returns valid messages");
            Some(m)
        }
        Err(Error::Protocol(_)) | Err(Error::VersionMismatch { .. }) => None,
        Err(other) => panic!("decoder returned a non-protocol error: {other}"),
    }
}

fn frame_of(payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_le_bytes().to_vec();
    f.extend_from_slice(payload);
    f
}

fn encode(m: &Message) -> Option<Vec<u8>> {
    let mut v = Vec::new();
    encode_into(m, &mut v).ok().map(|()| v)
}

fn any_string() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,20}",
        proptest::collection::vec(any::<char>(), 0..(MAX_STRING + 40))
            .prop_map(|v| v.into_iter().collect())
    ]
}

fn any_format() -> impl Strategy<Value = TextureFormat> {
    (0..TextureFormat::all().len()).prop_map(|i| TextureFormat::all().nth(i).unwrap())
}

fn any_usages() -> impl Strategy<Value = Vec<TextureUsage>> {
    proptest::collection::vec((0..5usize).prop_map(|i| TextureUsage::ALL[i]), 0..8)
}

fn any_info() -> impl Strategy<Value = ExportInfo> {
    (
        (
            any::<u32>(),
            any::<u32>(),
            any_format(),
            any_usages(),
            proptest::option::of(any_string()),
        ),
        (0..3u8, any::<u32>(), any::<u32>(), any::<u32>()),
        (any::<u64>(), any::<u32>(), any::<bool>(), any::<[u8; 16]>()),
    )
        .prop_map(
            |(
                (w, h, format, usage, label),
                (dim, layers, mips, samples),
                (size, mt, dedicated, uuid),
            )| ExportInfo {
                descriptor: TextureDescriptor {
                    width: w % 5000,
                    height: h % 5000,
                    format,
                    usage,
                    label,
                },
                extent: TextureExtent {
                    dimension: [
                        TextureDimension::D2,
                        TextureDimension::D3,
                        TextureDimension::Cube,
                    ][dim as usize],
                    depth_or_array_layers: layers % 20,
                    mip_level_count: mips % 20,
                    sample_count: samples % 70,
                },
                handle_type: ExternalHandleType::OpaqueFd,
                layout: MemoryLayout::Optimal,
                allocation_size: size % (1 << 40),
                memory_type_index: mt,
                dedicated,
                planes: Vec::new(),
                device_uuid: uuid,
                driver_uuid: uuid,
            },
        )
}

fn any_reject_reason() -> impl Strategy<Value = RejectReason> {
    prop_oneof![
        Just(RejectReason::Busy),
        Just(RejectReason::Policy),
        Just(RejectReason::Device),
        Just(RejectReason::Sync),
        Just(RejectReason::Limit),
    ]
}

fn any_sync() -> impl Strategy<Value = SyncMode> {
    prop_oneof![
        Just(SyncMode::Host),
        Just(SyncMode::Timeline),
        Just(SyncMode::BinarySemaphore)
    ]
}

/// Messages of every variant with arbitrary field values, in and out of range.
fn any_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (
            any::<[u8; 4]>(),
            0..4u32,
            any::<u32>(),
            proptest::collection::vec(any_sync(), 0..12),
            any_string()
        )
            .prop_map(|(magic, version, pid, sync_modes, name)| {
                let mut h = Hello::new(Role::Consumer, [1; 16], [2; 16], sync_modes, name);
                if magic[0] % 2 == 0 {
                    h.magic = magic;
                }
                h.version = version;
                h.pid = pid;
                Message::Hello(h)
            }),
        (any_reject_reason(), any_string())
            .prop_map(|(reason, detail)| Message::Reject { reason, detail }),
        (
            any::<u64>(),
            any_sync(),
            proptest::collection::vec(any_info(), 0..(MAX_SLOTS + 3)),
            any::<bool>()
        )
            .prop_map(|(generation, sync, slots, ordered)| Message::PoolSetup {
                generation,
                sync,
                slots,
                ordered
            }),
        (0..40u32, any::<u64>(), any::<u64>(), any::<u64>()).prop_map(
            |(slot, frame, present_ns, sent_ns)| Message::FrameReady {
                id: FrameId { slot, frame },
                present_ns,
                sent_ns
            }
        ),
        (0..40u32, any::<u64>(), any::<u64>()).prop_map(|(slot, frame, value)| {
            Message::FrameReleased {
                id: FrameId { slot, frame },
                value,
            }
        }),
        any_sync().prop_map(|sync| Message::SyncSetup { sync }),
        any_string().prop_map(|reason| Message::Bye { reason }),
        (0..40u32).prop_map(|slots| Message::BinarySyncSetup { slots }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 30_000, failure_persistence: None, ..ProptestConfig::default() })]

    /// Valid-shaped messages with arbitrary fields: decoding an encoded message succeeds
    /// exactly when the message passes validation, and then returns it unchanged.
    #[test]
    fn generated_messages_decode_iff_valid(m in any_message()) {
        if let Some(frame) = encode(&m) {
            match checked_decode(&frame) {
                Some(back) => prop_assert_eq!(back, m),
                None => prop_assert!(m.validate().is_err(), "a valid message was refused: {m:?}"),
            }
        } else {
            prop_assert!(frame_size_exceeds_cap(&m));
        }
    }

    /// Random bytes, framed and unframed.
    #[test]
    fn random_frames_are_refused_or_valid(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
        checked_decode(&bytes);
        checked_decode(&frame_of(&bytes));
    }

    /// Valid frames, mutated: bit flips, truncation, splices, random insertions.
    #[test]
    fn mutated_frames_are_refused_or_valid(
        m in any_message(),
        other in any_message(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        cut in any::<usize>(),
        insert in proptest::collection::vec(any::<u8>(), 0..16),
    ) {
        let Some(mut f) = encode(&m) else { return Ok(()) };
        for (pos, val) in flips {
            let i = pos % f.len();
            f[i] ^= val;
        }
        checked_decode(&f);
        let cut = cut % (f.len() + 1);
        checked_decode(&f[..cut]);
        if let Some(o) = encode(&other) {
            let mut spliced = f[..cut].to_vec();
            spliced.extend_from_slice(&o[o.len().min(4)..]);
            checked_decode(&spliced);
            checked_decode(&frame_of(&spliced[4.min(spliced.len())..]));
        }
        let mut inserted = f.clone();
        let at = cut.min(inserted.len());
        inserted.splice(at..at, insert.iter().copied());
        checked_decode(&frame_of(&inserted[4.min(inserted.len())..]));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, failure_persistence: None, ..ProptestConfig::default() })]

    /// Huge and inconsistent length prefixes never make the decoder trust them.
    #[test]
    fn huge_length_prefixes_are_refused(len in any::<u32>(), payload in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut f = len.to_le_bytes().to_vec();
        f.extend_from_slice(&payload);
        if len as usize != payload.len() {
            prop_assert!(checked_decode(&f).is_none());
        }
    }
}

fn frame_size_exceeds_cap(m: &Message) -> bool {
    postcard::to_allocvec(m)
        .map(|v| v.len() + 4 > MAX_MESSAGE_BYTES)
        .unwrap_or(true)
}

#[test]
fn a_pool_setup_claiming_a_million_slots_allocates_nothing_large() {
    // Variant 2 (PoolSetup), generation 0, sync Host, then a slot count of 1,000,000 and no
    // slots: the decoder must not reserve room for a million ExportInfos.
    let mut payload = vec![2u8, 0, 0];
    let mut n = 1_000_000u32;
    while n >= 0x80 {
        payload.push((n as u8) | 0x80);
        n >>= 7;
    }
    payload.push(n as u8);
    PEAK_ALLOCATION.store(0, Ordering::Relaxed);
    assert!(checked_decode(&frame_of(&payload)).is_none());
    let peak = PEAK_ALLOCATION.load(Ordering::Relaxed);
    println!("peak single allocation decoding it: {peak} bytes");
    assert!(peak < 64 * 1024, "{peak}");
}
