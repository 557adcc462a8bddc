#!/usr/bin/env bash
# The demo: three simulated hospitals train a pneumonia classifier together on real chest X-rays
# (PneumoniaMNIST), each over its own mutual-TLS gRPC connection, FedAvg, 5 rounds, the global model
# evaluated every round. Installs what is missing, builds Release, runs fedmed-simulate.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh build
DATA_ROOT="$(scripts/data.sh)"
exec build/bin/fedmed-simulate --config experiments/demo.toml --data "$DATA_ROOT" "$@"
