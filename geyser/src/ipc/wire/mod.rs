//! What crosses the connection: the versioned, length-prefixed postcard messages
//! with hard caps (public, so tests, fuzzers and other implementations speak it), and the
//! sync-mode negotiation both ends run at connection time.

pub(crate) mod negotiate;
mod protocol;

pub use protocol::*;
