//! Vulkan backend (ash).
