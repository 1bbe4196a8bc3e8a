#!/usr/bin/env bash
# The whole test suite: unit, integration (GPU ones on lavapipe without a GPU), benches in test
# mode, doc tests. Set SHUTTER_REQUIRE_GPU=1 to fail rather than skip without a GPU adapter.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --locked --all-targets
cargo test --locked --doc
