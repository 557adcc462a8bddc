#!/usr/bin/env bash
# Installs the Debian 12 packages fedmed needs to build, test and run (only the missing ones).
# Usage: scripts/deps.sh   (as root, or with sudo available)
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config ccache time
  libtorch-dev                                   # LibTorch 1.13 (C++ API)
  libdnnl-dev                                    # oneDNN, LibTorch's own CPU kernels: the cnn's
                                                 # max-pool and linear layers (common/model/onednn_ops.h)
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libssl-dev                                     # OpenSSL 3: TLS, X.509, SHA-256
  libboost-dev                                   # Boost.Asio (header-only)
  libspdlog-dev libtomlplusplus-dev libcli11-dev nlohmann-json3-dev libzip-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libstb-dev                                     # stb_image: PNG/JPEG decoding (image folders)
  libdcmtk-dev                                   # DCMTK: DICOM reading (and writing, in tests)
  python3-torch                                  # tests check that Python's torch.load reads our checkpoints
  python3-pil python3-numpy                      # tests check preprocessing against Pillow bit for bit
  libpng-dev                                     # tests write 16-bit PNGs (stb_image_write cannot)
  python3-sklearn                                # tests compare fedmed-report's AUC with scikit-learn's
  python3-matplotlib                             # plots: fedmed-audit report --plot (tools/audit/plot_epsilon.py),
                                                 # fedmed-simulate (experiments/plot_results.py)
  clang-14 libclang-rt-14-dev                    # libFuzzer + sanitizers: scripts/fuzz.sh (fuzz/)
  libjs-chart.js                                 # the coordinator's status page serves its Chart.js
  prometheus                                     # promtool: status_server_test checks /metrics
  chromium nodejs                                # the status page's browser test (tests/status_page/)
  iproute2 tinyproxy                             # the multi-host test bed (scripts/netns.sh): namespaces,
                                                 # tbf, and the HTTP CONNECT proxy of proxied sites
)
# npm (for playwright-core, below): Debian's package, unless a node install brings its own.
command -v npm > /dev/null 2>&1 || PACKAGES+=(npm)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -ne 0 ]; then
  echo "fedmed: installing Debian packages: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# playwright-core (the driver only; it drives Debian's chromium, downloads no browser) for the
# status page's browser test, pinned in tests/status_page/package.json, into its node_modules/.
PAGE_TEST="$(dirname "$0")/../tests/status_page"
if [ ! -d "$PAGE_TEST/node_modules/playwright-core" ]; then
  echo "fedmed: installing playwright-core (npm) into tests/status_page/node_modules"
  (cd "$PAGE_TEST" && npm install --no-audit --no-fund --loglevel=error)
fi
