//! Geyser's validation messenger: the debug-utils callback that counts validation-layer
//! errors (see [`super::diagnostics`]) and logs the rest, and its one known false positive.

use std::ffi::{c_void, CStr};
use std::sync::Mutex;

use ash::vk::{self, Handle};

use super::diagnostics;

/// Raw handles of timeline semaphores whose payload is shared with other objects (exported or
/// imported). The validation layer cannot see signals made through the other objects, and
/// Debian's 1.3.239 layer reports `VUID-VkSemaphoreSignalInfo-value-03259` for host signals on
/// them even with no submission pending; that one VUID is downgraded to a warning for these
/// handles only. [`super::SharedTimelineSemaphore::signal`] checks the value itself.
static EXTERNAL_TIMELINES: Mutex<Vec<u64>> = Mutex::new(Vec::new());

/// Adds a timeline semaphore to [`EXTERNAL_TIMELINES`] (it was exported or imported).
pub(crate) fn register_external_timeline(semaphore: vk::Semaphore) {
    if let Ok(mut v) = EXTERNAL_TIMELINES.lock() {
        v.push(semaphore.as_raw());
    }
}

/// Removes a timeline semaphore from [`EXTERNAL_TIMELINES`] (it is being destroyed).
pub(crate) fn forget_external_timeline(semaphore: vk::Semaphore) {
    if let Ok(mut v) = EXTERNAL_TIMELINES.lock() {
        v.retain(|h| *h != semaphore.as_raw());
    }
}

fn is_external_timeline_false_positive(data: &vk::DebugUtilsMessengerCallbackDataEXT<'_>) -> bool {
    // SAFETY: the layer passes valid strings and object arrays for the duration of the call.
    let id = unsafe { data.message_id_name_as_c_str() };
    if id != Some(c"VUID-VkSemaphoreSignalInfo-value-03259") {
        return false;
    }
    // SAFETY: as above.
    let objects: &[vk::DebugUtilsObjectNameInfoEXT<'_>] = if data.p_objects.is_null() {
        &[]
    } else {
        // SAFETY: the layer guarantees `p_objects` points at `object_count` valid entries.
        unsafe { std::slice::from_raw_parts(data.p_objects, data.object_count as usize) }
    };
    let external = EXTERNAL_TIMELINES
        .lock()
        .map(|v| v.clone())
        .unwrap_or_default();
    !objects.is_empty() && objects.iter().all(|o| external.contains(&o.object_handle))
}
unsafe extern "system" fn debug_callback(
    severity: vk::DebugUtilsMessageSeverityFlagsEXT,
    kind: vk::DebugUtilsMessageTypeFlagsEXT,
    data: *const vk::DebugUtilsMessengerCallbackDataEXT<'_>,
    _user: *mut c_void,
) -> vk::Bool32 {
    // SAFETY: the layer passes a valid callback-data pointer for the duration of the call;
    // `p_message` is a NUL-terminated string or null.
    let message = unsafe {
        data.as_ref()
            .and_then(|d| (!d.p_message.is_null()).then(|| CStr::from_ptr(d.p_message)))
            .map(|m| m.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    // SAFETY: as above.
    let known_false_positive =
        unsafe { data.as_ref() }.is_some_and(is_external_timeline_false_positive);
    if known_false_positive {
        tracing::warn!(target: "geyser::vulkan::validation", "ignored for an external timeline (the layer cannot see its other users): {message}");
    } else if severity.contains(vk::DebugUtilsMessageSeverityFlagsEXT::ERROR) {
        diagnostics::record_validation_error(&message);
        tracing::error!(target: "geyser::vulkan::validation", ?kind, "{message}");
    } else if severity.contains(vk::DebugUtilsMessageSeverityFlagsEXT::WARNING) {
        tracing::warn!(target: "geyser::vulkan::validation", ?kind, "{message}");
    } else {
        tracing::debug!(target: "geyser::vulkan::validation", ?kind, "{message}");
    }
    vk::FALSE
}

/// The create info of Geyser's messenger: errors and warnings of every message type, to
/// [`debug_callback`].
pub(crate) fn messenger_info() -> vk::DebugUtilsMessengerCreateInfoEXT<'static> {
    vk::DebugUtilsMessengerCreateInfoEXT::default()
        .message_severity(
            vk::DebugUtilsMessageSeverityFlagsEXT::ERROR
                | vk::DebugUtilsMessageSeverityFlagsEXT::WARNING,
        )
        .message_type(
            vk::DebugUtilsMessageTypeFlagsEXT::VALIDATION
                | vk::DebugUtilsMessageTypeFlagsEXT::GENERAL
                | vk::DebugUtilsMessageTypeFlagsEXT::PERFORMANCE,
        )
        .pfn_user_callback(Some(debug_callback))
}
