//! What crosses the connection: the versioned, length-prefixed postcard messages
//! with hard caps (public, so tests, fuzzers and other implementations speak it), and the
//! sync-mode negotiation both ends run at connection time.

pub(crate) mod negotiate;
pub(crate) mod protocol;

// `SyncMode` and `FrameId` are part of the ipc API: their public path is `geyser::ipc::`.
pub use protocol::{
    bounded_reason, decode, encode_into, peek_hello_version, Hello, Message, Role, HEADER_BYTES,
    MAGIC, MAX_FDS_PER_MESSAGE, MAX_MESSAGE_BYTES, MAX_MODIFIERS, MAX_SLOTS, MAX_SLOT_BYTES,
    MAX_STRING, MAX_SYNC_MODES, PROTOCOL_VERSION,
};
pub(crate) use protocol::{FrameId, SyncMode};
