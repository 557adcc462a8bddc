#!/usr/bin/env bash
# AddressSanitizer and UndefinedBehaviorSanitizer, in build-asan/ (Debug):
# 1. the pure-logic unit tests (file I/O, byte order and the seeded shuffle, data, metrics, crypto,
#    config, provisioning, the privacy accountant and budget, the strategies, the privacy log,
#    secure aggregation, the image/DICOM decoders and preprocessing, the update quantisation
#    codecs and [transport]) and the coordinator's domain
#    tests (coordinator_core_test);
# 2. the code that hands LibTorch's buffers to oneDNN (common/model/onednn_ops.h): its own tests
#    and the zoo's (model_test), and DP-SGD's per-sample gradients built on it (dp_sgd_test);
# 3. whole federations with instrumented binaries (fedmed-coordinator, fedmed-site,
#    fedmed-simulate): the threads-mode federation of simulation_test, SIGTERM to DP-SGD sites
#    mid-training (site_sigterm_test), and four hostile-site cases (a 1e30 update, a report of
#    2^32 classes, 200,000 empty chunks, a disconnect half-way through an upload).
# LibTorch itself is not built with sanitizers; our code around it is.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
TESTS=(util_test data_test metrics_test crypto_test config_test provision_test privacy_test
       privacy_budget_test strategy_test privacy_log_test secagg_test hospital_data_test
       site_data_config_test coordinator_core_test quantization_test transport_config_test)
SYSTEM=(site_sigterm_test simulation_test hostile_site_test model_test dp_sgd_test)
SYSTEM_TESTS='model_test\.(OneDnnOpsTest|ZooTest)\.|dp_sgd_test\.|site_sigterm_test\.|simulation_test\.SimulateBinaryTest\.ThreadsMode|hostile_site_test\..*/(huge_values|eval_2_to_the_32_classes|200000_empty_chunks|disconnect_half_way)'
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DFEDMED_SANITIZE=ON -DFEDMED_BUILD_BENCH=OFF \
  > build-asan.cmake.log 2>&1 || { cat build-asan.cmake.log; exit 1; }
cmake --build build-asan --target "${TESTS[@]}" "${SYSTEM[@]}" fedmed-coordinator fedmed-site \
  fedmed-simulate fedmed-audit -j"$(nproc)"
FEDMED_DATA="$(scripts/data.sh)"
export FEDMED_DATA
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
cd build-asan
ctest --output-on-failure -j2 -R "^($(IFS='|'; echo "${TESTS[*]}"))\."
ctest --output-on-failure -j2 -R "^(${SYSTEM_TESTS})"
