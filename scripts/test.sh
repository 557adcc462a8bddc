#!/usr/bin/env bash
# Installs what is missing, builds (Release, with tests) and runs the whole test suite with ctest.
# Extra arguments go to ctest (e.g. scripts/test.sh -L unit).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh build
FEDMED_DATA="$(scripts/data.sh)"
export FEDMED_DATA
cd build
ctest --output-on-failure -j2 "$@"
