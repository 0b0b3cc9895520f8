//! Metal backend (macOS/iOS).
