//! Test and soak instruments: counts of the Vulkan objects Geyser's wrappers hold right now,
//! and of the validation-layer errors reported to instances Geyser created.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

pub(crate) static LIVE_IMAGES: AtomicUsize = AtomicUsize::new(0);
pub(crate) static LIVE_MEMORIES: AtomicUsize = AtomicUsize::new(0);
pub(crate) static LIVE_TEXTURES: AtomicUsize = AtomicUsize::new(0);

/// Counts of Vulkan objects Geyser's wrappers hold right now in this process (for leak tests
/// and soak runs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LiveObjects {
    /// `VkImage`s.
    pub images: usize,
    /// `VkDeviceMemory` allocations.
    pub memories: usize,
    /// Texture objects.
    pub textures: usize,
}

/// Current [`LiveObjects`].
pub fn live_objects() -> LiveObjects {
    LiveObjects {
        images: LIVE_IMAGES.load(Ordering::Relaxed),
        memories: LIVE_MEMORIES.load(Ordering::Relaxed),
        textures: LIVE_TEXTURES.load(Ordering::Relaxed),
    }
}

/// How many validation messages [`validation_messages`] keeps.
const KEPT_MESSAGES: usize = 32;

static VALIDATION_ERRORS: AtomicUsize = AtomicUsize::new(0);
static VALIDATION_MESSAGES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Counts one validation error (and keeps its message while fewer than 32 are kept).
pub(crate) fn record_validation_error(message: &str) {
    VALIDATION_ERRORS.fetch_add(1, Ordering::SeqCst);
    if let Ok(mut m) = VALIDATION_MESSAGES.lock() {
        if m.len() < KEPT_MESSAGES {
            m.push(message.to_owned());
        }
    }
}

/// Number of validation-layer errors reported by any instance Geyser created in this process.
/// Tests assert it stays 0.
pub fn validation_error_count() -> usize {
    VALIDATION_ERRORS.load(Ordering::SeqCst)
}

/// The first validation error messages (at most 32), for test failure output.
pub fn validation_messages() -> Vec<String> {
    VALIDATION_MESSAGES
        .lock()
        .map(|m| m.clone())
        .unwrap_or_default()
}
