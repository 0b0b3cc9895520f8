//! Cross-process endpoints.
