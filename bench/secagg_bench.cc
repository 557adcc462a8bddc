// What secure aggregation (common/secagg/protocol.h) costs, against the plain FedAvg sum it
// replaces, measured in the same run (docs/BENCHMARKS.md reads the ratios off one run). The
// update is the cnn's: 1,199,042 float32 values (4.8 MB). Arguments: n participants (and, for
// the server, how many of them dropped after sharing their keys).
//   BM_PlainWeightedSum/n     the coordinator's FedAvg work without SecAgg: sum_k w_k * delta_k
//   BM_ClientKeyExchange/n    one site, stages 0 and 1: two X25519 key pairs, the signature, the
//                             check of n peers' certificates and signatures, Shamir sharing of
//                             two 32-byte secrets among n, n X25519 agreements, n AES-GCM seals
//   BM_ClientMaskInput/n      one site, stage 2: opening n shares, quantising the update and
//                             adding the self mask and n - 1 pairwise masks (AES-256-CTR)
//   BM_ServerUnmask/n/d       the coordinator, stage 3: rebuilding n secrets from t shares each,
//                             summing n - d masked inputs and removing their masks (d dropped
//                             sites cost n - d pairwise masks each)
// Sites run their stages in parallel, each on its own machine, so a secure round adds about
// ClientKeyExchange + ClientMaskInput to a site's time and ServerUnmask - PlainWeightedSum to the
// coordinator's. A last argument k > 0 runs SecAgg+ (Bell et al., CCS 2020): each site shares
// with k neighbours only (threshold k/2 + 1), so a site's cost stops growing with n.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/audit/privacy_log.h"
#include "common/crypto/audit_key.h"
#include "common/crypto/pki.h"
#include "common/secagg/protocol.h"

namespace fedmed {
namespace {

constexpr int64_t kCnnValues = 1199042;

struct Setup {
  KeyAndCert ca;
  std::vector<KeyAndCert> audit;
  SecAggRoundConfig config;
  std::vector<std::vector<float>> updates;
};

const Setup& GetSetup(int n) {
  static std::map<int, std::unique_ptr<Setup>> cache;
  auto& s = cache[n];
  if (s) return *s;
  s = std::make_unique<Setup>();
  s->ca = CreateCa("bench-ca", 2);
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 0.01f);
  s->config.round = 1;
  s->config.threshold = n / 2 + 1;
  s->config.weight_normalizer = 1000;
  s->config.num_values = kCnnValues;
  for (int i = 1; i <= n; ++i) {
    char name[16];
    std::snprintf(name, sizeof(name), "site-%03d", i);
    s->config.participants.push_back(name);
    s->audit.push_back(IssueCertificate(s->ca, AuditCertificateRequest(name, /*validity_days=*/2)));
  }
  for (int i = 0; i < std::min(n, 4); ++i) {  // sites reuse 4 distinct updates
    std::vector<float> u(kCnnValues);
    for (float& x : u) x = normal(rng);
    s->updates.push_back(std::move(u));
  }
  return *s;
}

// The setup's round config with SecAgg+ neighbours k (0 = everyone).
SecAggRoundConfig WithNeighbours(const Setup& s, int k) {
  SecAggRoundConfig c = s.config;
  c.neighbours = k;
  if (k > 0) c.threshold = k / 2 + 1;
  return c;
}

std::vector<SecAggClient> Clients(const Setup& s, const SecAggRoundConfig& config) {
  std::vector<SecAggClient> clients;
  for (size_t i = 0; i < config.participants.size(); ++i) {
    clients.emplace_back(config, config.participants[i],
                         AuditSigningKey::FromPem(s.audit[i].key_pem, "bench key"),
                         s.audit[i].cert_pem, s.ca.cert_pem);
  }
  return clients;
}

// Runs stages 0 and 1 for everyone; returns the server ready for masked inputs.
std::unique_ptr<SecAggServer> ExchangeKeys(const Setup& s, const SecAggRoundConfig& config,
                                           std::vector<SecAggClient>& clients) {
  auto server = std::make_unique<SecAggServer>(config, s.ca.cert_pem, std::time(nullptr));
  for (size_t i = 0; i < clients.size(); ++i) {
    server->AddKeys(config.participants[i], clients[i].AdvertiseKeys());
  }
  const auto u1 = server->CloseKeys();
  for (size_t i = 0; i < clients.size(); ++i) {
    server->AddShares(config.participants[i], clients[i].ShareKeys(u1, std::time(nullptr)));
  }
  server->CloseShares();
  return server;
}

void BM_PlainWeightedSum(benchmark::State& state) {
  const Setup& s = GetSetup(static_cast<int>(state.range(0)));
  std::vector<double> sum(kCnnValues);
  for (auto _ : state) {
    std::fill(sum.begin(), sum.end(), 0.0);
    for (int k = 0; k < state.range(0); ++k) {
      const std::vector<float>& u = s.updates[static_cast<size_t>(k) % s.updates.size()];
      const double w = 1.0 / static_cast<double>(state.range(0));
      for (int64_t i = 0; i < kCnnValues; ++i) sum[i] += w * u[i];
    }
    benchmark::DoNotOptimize(sum.data());
  }
}

void BM_ClientKeyExchange(benchmark::State& state) {
  const Setup& s = GetSetup(static_cast<int>(state.range(0)));
  const SecAggRoundConfig config = WithNeighbours(s, static_cast<int>(state.range(1)));
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<SecAggClient> clients = Clients(s, config);
    SecAggServer server(config, s.ca.cert_pem, std::time(nullptr));
    for (size_t i = 1; i < clients.size(); ++i) {
      server.AddKeys(config.participants[i], clients[i].AdvertiseKeys());
    }
    state.ResumeTiming();
    server.AddKeys(config.participants[0], clients[0].AdvertiseKeys());
    const auto u1 = server.CloseKeys();
    benchmark::DoNotOptimize(clients[0].ShareKeys(u1, std::time(nullptr)));
  }
}

void BM_ClientMaskInput(benchmark::State& state) {
  const Setup& s = GetSetup(static_cast<int>(state.range(0)));
  const SecAggRoundConfig config = WithNeighbours(s, static_cast<int>(state.range(1)));
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<SecAggClient> clients = Clients(s, config);
    auto server = ExchangeKeys(s, config, clients);
    const auto inbox = server->InboxFor(1);
    const auto u2 = server->u2();
    state.ResumeTiming();
    benchmark::DoNotOptimize(clients[0].MaskInput(inbox, u2, s.updates[0], 500));
  }
}

void BM_ServerUnmask(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0)), dropped = static_cast<int>(state.range(1));
  const Setup& s = GetSetup(n);
  const SecAggRoundConfig config = WithNeighbours(s, static_cast<int>(state.range(2)));
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<SecAggClient> clients = Clients(s, config);
    auto server = ExchangeKeys(s, config, clients);
    const auto u2 = server->u2();
    for (int i = dropped; i < n; ++i) {  // the first `dropped` sites die after sharing
      server->AddMaskedInput(config.participants[static_cast<size_t>(i)],
                             clients[static_cast<size_t>(i)].MaskInput(
                                 server->InboxFor(static_cast<uint32_t>(i + 1)), u2,
                                 s.updates[static_cast<size_t>(i) % s.updates.size()], 500));
    }
    const auto u3 = server->CloseMaskedInput();
    for (uint32_t v : u3) {
      server->AddUnmaskShares(config.participants[v - 1], clients[v - 1].Unmask(u3));
    }
    state.ResumeTiming();
    benchmark::DoNotOptimize(server->Unmask());
  }
}

BENCHMARK(BM_PlainWeightedSum)->Arg(3)->Arg(10)->Arg(30)->Arg(100)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ClientKeyExchange)
    ->Args({3, 0})->Args({10, 0})->Args({30, 0})->Args({30, 8})->Args({100, 0})->Args({100, 8})
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ClientMaskInput)
    ->Args({3, 0})->Args({10, 0})->Args({30, 0})->Args({30, 8})->Args({100, 0})->Args({100, 8})
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ServerUnmask)
    ->Args({3, 0, 0})->Args({10, 0, 0})->Args({10, 3, 0})->Args({30, 0, 0})->Args({30, 10, 0})
    ->Args({30, 0, 8})->Args({30, 10, 8})
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace fedmed

BENCHMARK_MAIN();
