#!/usr/bin/env bash
# Set-up on a fresh Debian/Ubuntu machine, then `shutter run` on the built-in default image.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
# Compilers for the bundled libwebp, libclang for the camera bindings (bindgen), and lavapipe
# (software Vulkan) for machines without a GPU.
$SUDO apt-get update -qq
base="ca-certificates curl build-essential pkg-config mesa-vulkan-drivers libvulkan1"
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $base libclang1-14 > /dev/null \
    || $SUDO apt-get install -y -qq --no-install-recommends $base libclang-dev > /dev/null

if ! command -v cargo > /dev/null; then
    [ -x "$HOME/.cargo/bin/cargo" ] || \
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    export PATH="$HOME/.cargo/bin:$PATH"
fi

cargo build --release --locked
./target/release/shutter devices
./target/release/shutter run --mirror --filter sepia
