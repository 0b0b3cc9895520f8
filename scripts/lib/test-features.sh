#!/usr/bin/env bash
# The cargo features every test build uses (scripts/test.sh, scripts/test-pipewire.sh, CI's
# clippy): one feature set, so the workspace is compiled once.
echo "geyser/webgpu geyser/gl geyser-cli/pipewire"
