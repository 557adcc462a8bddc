#!/usr/bin/env bash
# The pure-logic unit tests (file I/O, byte order and the seeded shuffle, data, metrics, crypto,
# config, provisioning, the privacy accountant and budget, the strategies, the privacy log, secure
# aggregation, the image/DICOM decoders and preprocessing) under AddressSanitizer
# and UndefinedBehaviorSanitizer, in build-asan/. LibTorch and the process-level tests are not
# instrumented (LibTorch itself is not built with sanitizers, and they would not fit CI's time).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
TESTS=(util_test data_test metrics_test crypto_test config_test provision_test privacy_test
       privacy_budget_test strategy_test privacy_log_test secagg_test hospital_data_test site_data_config_test)
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DFEDMED_SANITIZE=ON -DFEDMED_BUILD_BENCH=OFF \
  > build-asan.cmake.log 2>&1 || { cat build-asan.cmake.log; exit 1; }
cmake --build build-asan --target "${TESTS[@]}" -j"$(nproc)"
FEDMED_DATA="$(scripts/data.sh)"
export FEDMED_DATA
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
cd build-asan
ctest --output-on-failure -j2 -R "^($(IFS='|'; echo "${TESTS[*]}"))\."
