// The secure-aggregation round (common/secagg/protocol.h) run between real SecAggClients and a
// SecAggServer, with real X25519/HKDF/AES-GCM/Ed25519 keys and certificates from a test CA; the
// transport is a function call. What the issue asks: the unmasked sum equals the plain sum of the
// quantised updates exactly (3 and 10 sites); a site dropped after key sharing is recovered; below
// the threshold the round fails cleanly; a masked input looks uniform; a tampered share or a bad
// signature excludes the site and names it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "common/crypto/pki.h"
#include "common/secagg/key_agreement.h"
#include "common/secagg/protocol.h"
#include "tests/audit/audit_test_util.h"

namespace fedmed {
namespace {

using testing::IssueAuditCertificate;

std::string SiteName(int i) {
  char name[16];
  std::snprintf(name, sizeof(name), "site-%02d", i);
  return name;
}

// A federation of n sites with audit certificates, and their updates.
struct Federation {
  KeyAndCert ca;
  std::vector<KeyAndCert> audit;
  std::vector<std::vector<float>> updates;
  std::vector<int64_t> samples;
  SecAggRoundConfig config;

  Federation(int n, int threshold, int64_t dim, uint64_t seed) {
    ca = CreateCa("secagg-test-ca", 30);
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> normal(0.0f, 0.3f);
    config.round = 3;
    config.attempt = 1;
    config.threshold = threshold;
    config.clip_range = 1.0;
    config.weight_normalizer = 1000;
    config.num_values = dim;
    for (int i = 1; i <= n; ++i) {
      config.participants.push_back(SiteName(i));
      audit.push_back(IssueAuditCertificate(ca, SiteName(i)));
      std::vector<float> u(static_cast<size_t>(dim));
      for (float& x : u) x = normal(rng);
      updates.push_back(std::move(u));
      samples.push_back(100 + 37 * i);
    }
  }

  SecAggClient Client(int i) const {
    return SecAggClient(config, SiteName(i),
                        AuditSigningKey::FromPem(audit[i - 1].key_pem, "test audit key"),
                        audit[i - 1].cert_pem, ca.cert_pem);
  }

  // What the unmasked sum must be over `sites` (1-based): the plain mod-2^32 sum of their codes,
  // decoded.
  std::vector<double> PlainSum(const std::vector<int>& sites) const {
    const FixedPointCodec codec = config.Codec();
    std::vector<uint32_t> sum(static_cast<size_t>(config.num_values), 0);
    for (int i : sites) AddMask(sum, codec.Quantize(updates[i - 1]));
    return codec.DequantizeSum(sum, static_cast<int>(sites.size()));
  }
};

// Hooks into one run of the round.
struct Faults {
  std::set<int> drop_after_sharing;     // never send a masked input
  std::set<int> silent_at_unmasking;    // send a masked input, then nothing
  int tamper_share_from = 0, tamper_share_to = 0;  // flip a ciphertext byte in transit
  int bad_signature = 0;                // this site's signature is altered
};

struct Outcome {
  SecAggSum sum;
  std::map<std::string, std::string> excluded;
  std::vector<MaskedInput> inputs;  // by site, index 0 = site 1
};

Outcome RunRound(const Federation& f, const Faults& faults) {
  const int n = static_cast<int>(f.config.participants.size());
  SecAggServer server(f.config, f.ca.cert_pem, std::time(nullptr));
  std::vector<SecAggClient> clients;
  for (int i = 1; i <= n; ++i) clients.push_back(f.Client(i));
  for (int i = 1; i <= n; ++i) {
    AdvertisedKeys keys = clients[i - 1].AdvertiseKeys();
    if (faults.bad_signature == i) keys.signature[5] ^= 0x01;
    const std::string refused = server.AddKeys(SiteName(i), keys);
    EXPECT_EQ(refused.empty(), faults.bad_signature != i) << refused;
  }
  EXPECT_TRUE(server.KeysComplete());
  const std::vector<AdvertisedKeys> u1 = server.CloseKeys();
  std::set<int> in_u1;
  for (const AdvertisedKeys& k : u1) in_u1.insert(static_cast<int>(k.index));
  for (int i : in_u1) {
    // As the coordinator relays them: the site's own keys and its neighbours' (all with plain
    // SecAgg).
    std::vector<AdvertisedKeys> relayed;
    for (const AdvertisedKeys& k : u1) {
      if (static_cast<int>(k.index) == i ||
          f.config.AreNeighbours(static_cast<uint32_t>(i), k.index)) {
        relayed.push_back(k);
      }
    }
    if (f.config.neighbours == 0) {
      EXPECT_EQ(relayed.size(), u1.size());
    }
    std::vector<EncryptedShare> shares = clients[i - 1].ShareKeys(relayed, std::time(nullptr));
    for (EncryptedShare& e : shares) {
      if (static_cast<int>(e.from) == faults.tamper_share_from &&
          static_cast<int>(e.to) == faults.tamper_share_to) {
        e.ciphertext[20] ^= 0x40;
      }
    }
    EXPECT_EQ(server.AddShares(SiteName(i), std::move(shares)), "");
  }
  EXPECT_TRUE(server.SharesComplete());
  const std::vector<uint32_t> u2 = server.CloseShares();
  Outcome out;
  out.inputs.resize(n);
  for (uint32_t i : u2) {
    MaskedInput input = clients[i - 1].MaskInput(server.InboxFor(i), u2, f.updates[i - 1],
                                                 f.samples[i - 1]);
    out.inputs[i - 1] = input;
    if (faults.drop_after_sharing.count(static_cast<int>(i))) continue;  // killed
    EXPECT_EQ(server.AddMaskedInput(SiteName(static_cast<int>(i)), std::move(input)), "");
  }
  const std::vector<uint32_t> u3 = server.CloseMaskedInput();
  for (uint32_t i : u3) {
    if (faults.silent_at_unmasking.count(static_cast<int>(i))) continue;
    EXPECT_EQ(server.AddUnmaskShares(SiteName(static_cast<int>(i)), clients[i - 1].Unmask(u3)), "");
  }
  out.excluded = server.excluded();
  out.sum = server.Unmask();
  return out;
}

std::vector<int> Range(int n) {
  std::vector<int> v;
  for (int i = 1; i <= n; ++i) v.push_back(i);
  return v;
}

void ExpectSumOf(const Federation& f, const Outcome& out, const std::vector<int>& sites) {
  const std::vector<double> expected = f.PlainSum(sites);
  ASSERT_EQ(out.sum.weighted_sum.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    ASSERT_EQ(out.sum.weighted_sum[i], expected[i]) << "value " << i;  // exact
  }
  int64_t samples = 0;
  std::vector<std::string> names;
  for (int i : sites) {
    samples += f.samples[i - 1];
    names.push_back(SiteName(i));
  }
  EXPECT_EQ(out.sum.total_samples, samples);
  EXPECT_EQ(out.sum.contributors, names);
}

TEST(SecAggProtocolTest, UnmaskedSumEqualsPlainSumOfQuantisedUpdatesFor3And10Sites) {
  for (const int n : {3, 10}) {
    SCOPED_TRACE(n);
    const Federation f(n, n / 2 + 1, 2000, 7 + n);
    const Outcome out = RunRound(f, {});
    ExpectSumOf(f, out, Range(n));
    EXPECT_TRUE(out.excluded.empty());
    // And that is the float sum up to the documented quantisation bound (values within R).
    for (size_t i = 0; i < 50; ++i) {
      double plain = 0;
      for (int s = 0; s < n; ++s) plain += std::clamp(static_cast<double>(f.updates[s][i]), -1.0, 1.0);
      EXPECT_NEAR(out.sum.weighted_sum[i], plain, out.sum.max_abs_error + 1e-12);
    }
  }
}

TEST(SecAggProtocolTest, SiteKilledAfterKeySharingIsRecoveredFromShares) {
  const Federation f(5, 3, 1500, 21);
  Faults faults;
  faults.drop_after_sharing = {3};
  const Outcome out = RunRound(f, faults);
  ExpectSumOf(f, out, {1, 2, 4, 5});
}

TEST(SecAggProtocolTest, SurvivorSilentAtUnmaskingIsTolerated) {
  const Federation f(5, 3, 500, 22);
  Faults faults;
  faults.drop_after_sharing = {2};
  faults.silent_at_unmasking = {5};  // its input counts; its answers are not needed (t = 3)
  const Outcome out = RunRound(f, faults);
  ExpectSumOf(f, out, {1, 3, 4, 5});
}

TEST(SecAggProtocolTest, BelowThresholdTheRoundFailsCleanly) {
  const Federation f(5, 4, 300, 23);
  Faults faults;
  faults.drop_after_sharing = {1, 4};  // 3 survivors < t = 4
  try {
    RunRound(f, faults);
    FAIL() << "the round went on with 3 survivors and threshold 4";
  } catch (const SecAggAborted& e) {
    EXPECT_NE(std::string(e.what()).find("below the threshold of 4"), std::string::npos)
        << e.what();
  }
  // Too few answers at unmasking fail as cleanly.
  Faults silent;
  silent.silent_at_unmasking = {1, 2};  // 3 answers < t = 4
  EXPECT_THROW(RunRound(f, silent), SecAggAborted);
}

TEST(SecAggProtocolTest, MaskedInputLooksUniform) {
  // An update of zeros: its codes are all the same word; masked, the top 8 bits of its 2^17
  // words fall evenly in 256 bins. Chi-square with 255 degrees of freedom; the 1 - 1e-6 quantile
  // is about 377 (Wilson-Hilferty), so a failure is a one-in-a-million event (the masks come
  // from OpenSSL's CSPRNG, which cannot be seeded; the seeded version is in secagg_test).
  Federation f(3, 2, 1 << 17, 24);
  std::fill(f.updates[1].begin(), f.updates[1].end(), 0.0f);
  const Outcome out = RunRound(f, {});
  const std::vector<uint32_t>& masked = out.inputs[1].masked;
  for (const int shift : {24, 0}) {  // high and low bits
    std::vector<double> bins(256, 0.0);
    for (const uint32_t w : masked) bins[(w >> shift) & 0xff] += 1;
    const double expected = static_cast<double>(masked.size()) / 256;
    double chi2 = 0;
    for (const double c : bins) chi2 += (c - expected) * (c - expected) / expected;
    EXPECT_LT(chi2, 377.0) << "shift " << shift;
  }
  ExpectSumOf(f, out, Range(3));
}

TEST(SecAggProtocolTest, TamperedShareExcludesItsSenderAndNamesIt) {
  const Federation f(5, 3, 400, 25);
  Faults faults;
  faults.tamper_share_from = 2;
  faults.tamper_share_to = 4;
  const Outcome out = RunRound(f, faults);
  ASSERT_EQ(out.excluded.count("site-02"), 1u);
  EXPECT_NE(out.excluded.at("site-02").find("site-04"), std::string::npos)
      << out.excluded.at("site-02");
  EXPECT_EQ(out.inputs[3].complaints, std::vector<uint32_t>{2});
  // site-02 is treated as dropped: its input is discarded, the others' pairwise masks with it
  // removed through its s_sk, and its b never revealed.
  ExpectSumOf(f, out, {1, 3, 4, 5});
}

TEST(SecAggProtocolTest, BadSignatureExcludesTheSiteAndNamesIt) {
  const Federation f(5, 3, 400, 26);
  Faults faults;
  faults.bad_signature = 3;
  const Outcome out = RunRound(f, faults);
  ASSERT_EQ(out.excluded.count("site-03"), 1u);
  EXPECT_NE(out.excluded.at("site-03").find("signature"), std::string::npos);
  ExpectSumOf(f, out, {1, 2, 4, 5});
}

TEST(SecAggProtocolTest, SiteRefusesKeysTheCoordinatorAltered) {
  const Federation f(3, 2, 10, 27);
  SecAggServer server(f.config, f.ca.cert_pem, std::time(nullptr));
  std::vector<SecAggClient> clients;
  for (int i = 1; i <= 3; ++i) clients.push_back(f.Client(i));
  for (int i = 1; i <= 3; ++i) {
    ASSERT_EQ(server.AddKeys(SiteName(i), clients[i - 1].AdvertiseKeys()), "");
  }
  std::vector<AdvertisedKeys> u1 = server.CloseKeys();
  u1[1].s_public_key = u1[0].s_public_key;  // a coordinator substituting a key it controls
  try {
    clients[2].ShareKeys(u1, std::time(nullptr));
    FAIL() << "altered keys accepted";
  } catch (const SecAggAborted& e) {
    EXPECT_NE(std::string(e.what()).find("site-02"), std::string::npos) << e.what();
  }
  // A certificate of another site is refused, naming both.
  AdvertisedKeys forged = clients[0].AdvertiseKeys();
  forged.certificate_pem = f.audit[1].cert_pem;
  const std::string why = CheckAdvertisedKeys(f.config, forged, f.ca.cert_pem, std::time(nullptr));
  EXPECT_NE(why.find("CN=site-02"), std::string::npos) << why;
}

TEST(SecAggProtocolTest, SiteNeverRevealsBothSecretsOfOnePeer) {
  const Federation f(4, 3, 50, 28);
  SecAggServer server(f.config, f.ca.cert_pem, std::time(nullptr));
  std::vector<SecAggClient> clients;
  for (int i = 1; i <= 4; ++i) clients.push_back(f.Client(i));
  for (int i = 1; i <= 4; ++i) ASSERT_EQ(server.AddKeys(SiteName(i), clients[i - 1].AdvertiseKeys()), "");
  const auto u1 = server.CloseKeys();
  for (int i = 1; i <= 4; ++i) {
    ASSERT_EQ(server.AddShares(SiteName(i), clients[i - 1].ShareKeys(u1, std::time(nullptr))), "");
  }
  const auto u2 = server.CloseShares();
  for (uint32_t i = 1; i <= 4; ++i) {
    ASSERT_EQ(server.AddMaskedInput(SiteName(static_cast<int>(i)),
                                    clients[i - 1].MaskInput(server.InboxFor(i), u2,
                                                             f.updates[i - 1], f.samples[i - 1])),
              "");
  }
  const auto u3 = server.CloseMaskedInput();
  const std::vector<UnmaskShare> shares = clients[0].Unmask(u3);
  std::set<uint32_t> owners;
  for (const UnmaskShare& s : shares) {
    EXPECT_TRUE(owners.insert(s.owner).second) << "two shares of " << s.owner;
    EXPECT_TRUE(s.self_mask);  // everyone survived: only b shares
  }
  EXPECT_EQ(owners.size(), 4u);
  // A second call has nothing left to reveal: the secrets were wiped.
  EXPECT_THROW(clients[0].Unmask(u3), SecAggAborted);
  // Survivors that are not a subset of U2, or fewer than t, are refused.
  EXPECT_THROW(clients[1].Unmask({1, 2}), SecAggAborted);
  // The server refuses a b-share of a dropped site (here: pretend site 4 dropped).
  std::vector<UnmaskShare> wrong = clients[1].Unmask(u3);
  for (UnmaskShare& s : wrong) s.self_mask = false;
  EXPECT_NE(server.AddUnmaskShares(SiteName(2), wrong).find("wrong kind"), std::string::npos);
}

// SecAgg+ (Bell et al., CCS 2020): each site shares with k neighbours only.
TEST(SecAggPlusTest, NeighbourGraphIsSymmetricKRegularAndChangesPerRound) {
  SecAggRoundConfig c;
  c.round = 4;
  for (int i = 1; i <= 12; ++i) c.participants.push_back(SiteName(i));
  c.neighbours = 4;
  std::set<std::vector<uint32_t>> graphs;
  for (uint32_t u = 1; u <= 12; ++u) {
    const std::vector<uint32_t> n = c.Neighbours(u);
    EXPECT_EQ(n.size(), 4u);
    for (uint32_t v : n) {
      EXPECT_NE(v, u);
      EXPECT_TRUE(c.AreNeighbours(v, u)) << u << " " << v;
    }
  }
  // AreNeighbours (O(1) on the kept ring) agrees with the lists, for every pair.
  for (uint32_t u = 1; u <= 12; ++u) {
    const std::vector<uint32_t> n = c.Neighbours(u);
    for (uint32_t v = 0; v <= 13; ++v) {
      EXPECT_EQ(c.AreNeighbours(u, v), std::binary_search(n.begin(), n.end(), v)) << u << " " << v;
    }
  }
  graphs.insert(c.Neighbours(1));
  c.round = 5;
  graphs.insert(c.Neighbours(1));
  EXPECT_EQ(c.AreNeighbours(1, c.Neighbours(1)[0]), true);  // the new round's ring, not the kept one
  c.attempt = 2;
  graphs.insert(c.Neighbours(1));
  EXPECT_GT(graphs.size(), 1u) << "the graph should be redrawn per round/attempt";
  c.neighbours = 0;  // the original protocol: everyone
  EXPECT_EQ(c.Neighbours(3).size(), 11u);
  c.neighbours = 20;  // k >= n - 1: everyone too
  EXPECT_EQ(c.Neighbours(3).size(), 11u);
}

TEST(SecAggPlusTest, SumIsExactWithNeighboursOnlyAndADropout) {
  Federation f(12, 3, 800, 31);
  f.config.neighbours = 4;
  const Outcome all = RunRound(f, {});
  ExpectSumOf(f, all, Range(12));
  Faults faults;
  faults.drop_after_sharing = {5};
  const Outcome dropped = RunRound(f, faults);
  std::vector<int> survivors;
  for (int i = 1; i <= 12; ++i) {
    if (i != 5) survivors.push_back(i);
  }
  ExpectSumOf(f, dropped, survivors);
}

TEST(SecAggPlusTest, ThresholdMustFitTheNeighbourhood) {
  Federation f(10, 6, 10, 32);
  f.config.neighbours = 4;  // 5 holders of each site's shares < t = 6
  EXPECT_THROW(f.config.Validate(), ConfigError);
  f.config.neighbours = 3;  // odd
  f.config.threshold = 3;
  EXPECT_THROW(f.config.Validate(), ConfigError);
}

TEST(KeyAgreementTest, BothEndsAgreeAndGcmAuthenticates) {
  const X25519KeyPair a = GenerateX25519KeyPair(), b = GenerateX25519KeyPair();
  const SecretBytes ab = AgreeKey(a.private_key, b.public_key, "info", "b");
  const SecretBytes ba = AgreeKey(b.private_key, a.public_key, "info", "a");
  EXPECT_EQ(ab.view(), ba.view());
  EXPECT_NE(AgreeKey(a.private_key, b.public_key, "other info", "b").view(), ab.view());
  const std::string sealed = AeadSeal(ab, "secret share", "aad");
  SecretBytes plain;
  ASSERT_TRUE(AeadOpen(ba, sealed, "aad", &plain));
  EXPECT_EQ(plain.view(), "secret share");
  EXPECT_FALSE(AeadOpen(ba, sealed, "other aad", &plain));
  std::string altered = sealed;
  altered[kAeadNonceBytes] ^= 1;
  EXPECT_FALSE(AeadOpen(ba, altered, "aad", &plain));
  EXPECT_TRUE(plain.empty());
  EXPECT_FALSE(AeadOpen(ba, "short", "aad", &plain));
  EXPECT_THROW(AgreeKey(a.private_key, "not a key", "info", "peer"), CryptoError);
  // A low-order point (all zeros) is refused by OpenSSL rather than giving a zero secret.
  EXPECT_THROW(AgreeKey(a.private_key, std::string(32, '\0'), "info", "peer"), CryptoError);
}

}  // namespace
}  // namespace fedmed
