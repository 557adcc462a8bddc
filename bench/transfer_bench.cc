// The coordinator's per-update work, per byte, against a baseline measured in the same run:
// memcpy of the same bytes. Model sizes: the demo's cnn (1.2 M parameters, 4.8 MB) and a 100 MB
// model. Reported in docs/BENCHMARKS.md as ratios to the memcpy baseline.
#include <benchmark/benchmark.h>

#include <cstring>
#include <string>

#include "common/crypto/sha256.h"
#include "common/model/model_state.h"
#include "common/transport/chunking.h"
#include "coordinator/strategy/fedavg_aggregator.h"

namespace fedmed {
namespace {

ModelState MakeState(int64_t num_values) {
  ModelState s;
  s.tensors.push_back(NamedTensor{"w", {num_values}, std::vector<float>(num_values)});
  for (int64_t i = 0; i < num_values; ++i) s.tensors[0].values[i] = static_cast<float>(i % 977) * 1e-3f;
  return s;
}

void SetBytes(benchmark::State& state, int64_t num_values) {
  state.SetBytesProcessed(state.iterations() * num_values * 4);
}

void BM_MemcpyBaseline(benchmark::State& state) {
  const std::string src(static_cast<std::size_t>(state.range(0) * 4), 'x');
  std::string dst(src.size(), '\0');
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), src.size());
    benchmark::DoNotOptimize(dst.data());
  }
  SetBytes(state, state.range(0));
}

void BM_EncodeModelState(benchmark::State& state) {
  const ModelState s = MakeState(state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(EncodeModelState(s));
  SetBytes(state, state.range(0));
}

void BM_DecodeModelState(benchmark::State& state) {
  const std::string bytes = EncodeModelState(MakeState(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(DecodeModelState(bytes, "bench"));
  SetBytes(state, state.range(0));
}

// What the coordinator does with an upload's bytes: reassemble 1 MiB chunks and check SHA-256.
void BM_ReceiveChunked(benchmark::State& state) {
  const std::string bytes = EncodeModelState(MakeState(state.range(0)));
  const std::string digest = Sha256Hex(bytes);
  for (auto _ : state) {
    ChunkAssembler assembler(static_cast<int64_t>(bytes.size()), digest, "bench");
    ForEachChunk(bytes, [&](std::string_view piece) {
      assembler.Append(piece);
      return true;
    });
    benchmark::DoNotOptimize(assembler.Finish());
  }
  SetBytes(state, state.range(0));
}

void BM_FedAvgAdd(benchmark::State& state) {
  const ModelState delta = MakeState(state.range(0));
  FedAvgAggregator aggregator(delta);
  for (auto _ : state) aggregator.Add(delta, 1570, "bench");
  SetBytes(state, state.range(0));
}

constexpr int64_t kCnn = 1199042;        // the demo's cnn at 28 px, 1 channel, 2 classes
constexpr int64_t k100MB = 25 * 1000 * 1000;

BENCHMARK(BM_MemcpyBaseline)->Arg(kCnn)->Arg(k100MB)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EncodeModelState)->Arg(kCnn)->Arg(k100MB)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DecodeModelState)->Arg(kCnn)->Arg(k100MB)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ReceiveChunked)->Arg(kCnn)->Arg(k100MB)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FedAvgAdd)->Arg(kCnn)->Arg(k100MB)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace fedmed

BENCHMARK_MAIN();
