#!/usr/bin/env bash
# ThreadSanitizer (clang-14), in build-tsan/ (RelWithDebInfo): the coordinator's domain tests
# (coordinator_core_test: admission, the round flow, the secure flow, call limits, the event
# loop), the compute slots of the threads mode, and the federations of simulation_test's
# SimulateBinaryTest (fedmed-simulate running the coordinator and every site as threads of one
# process, a sweep, and the process mode beside it, all instrumented binaries). Any report fails
# the job (halt_on_error; a racing child process fails its test). LibTorch, gRPC, abseil and
# OpenSSL are Debian's uninstrumented builds: scripts/tsan.supp makes TSan ignore the accesses
# they make themselves (called_from_lib; the file says why), while every access of our code is
# checked.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
export CCACHE_BASEDIR="$PWD"
TESTS=(coordinator_core_test simulation_test)
cmake -S . -B build-tsan -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_C_COMPILER=clang-14 \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFEDMED_TSAN=ON -DFEDMED_BUILD_BENCH=OFF \
  > build-tsan.cmake.log 2>&1 || { cat build-tsan.cmake.log; exit 1; }
cmake --build build-tsan --target "${TESTS[@]}" fedmed-coordinator fedmed-site fedmed-simulate \
  -j"$(nproc)"
FEDMED_DATA="$(scripts/data.sh)"
export FEDMED_DATA
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/scripts/tsan.supp"
cd build-tsan
ctest --output-on-failure -j2 -R \
  '^(coordinator_core_test\.|simulation_test\.(ComputeSlotsTest|SimulateBinaryTest)\.)'
