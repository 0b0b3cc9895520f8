//! Fuzzes the wire decoder: any byte string must decode to a valid message or to a
//! `Protocol`/`VersionMismatch` error, never panic, and a decoded message must survive an
//! encode/decode round trip unchanged.
//!
//! `cargo +nightly fuzz run decode -- -max_total_time=600` (from the repository root)
#![no_main]

use geyser::ipc::wire::{decode, encode_into};
use geyser::Error;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match decode(data) {
        Ok(msg) => {
            assert!(msg.validate().is_ok());
            let mut again = Vec::new();
            encode_into(&msg, &mut again).expect("a decoded message encodes");
            assert_eq!(decode(&again).expect("re-encoded message decodes"), msg);
        }
        Err(Error::Protocol(_)) | Err(Error::VersionMismatch { .. }) => {}
        Err(other) => panic!("decoder returned a non-protocol error: {other}"),
    }
});
