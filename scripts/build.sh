#!/usr/bin/env bash
# Configures and builds fedmed. Usage: scripts/build.sh [build-dir] [extra cmake args...]
# Defaults: build/ in Release. Uses every core; ccache when installed.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${1:-build}"
shift || true
BUILD_TYPE="${FEDMED_BUILD_TYPE:-Release}"
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="$BUILD_TYPE" "$@" > "$BUILD_DIR.cmake.log" 2>&1 \
  || { cat "$BUILD_DIR.cmake.log"; exit 1; }
cmake --build "$BUILD_DIR" -j"$(nproc)"
