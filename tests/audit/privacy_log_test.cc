// Privacy logs: the format, the writer (fsync'ed appends, torn-tail recovery, refusing broken
// logs), and verification that catches every single-byte change, every removed or reordered
// line, a cut-short tail, and entries signed by another key - exhaustively on a real 20-entry
// site log.
#include "common/audit/privacy_log.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/crypto/audit_key.h"
#include "common/crypto/pki.h"
#include "common/crypto/sha256.h"
#include "common/util/error.h"
#include "tests/audit/audit_test_util.h"
#include "tests/test_util.h"

namespace fedmed {
namespace {

using json = nlohmann::json;
using testing::IssueAuditCertificate;
using testing::ReadFile;
using testing::TempDir;

::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << text << "' does not contain '" << part << "'";
}

void WriteRaw(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

// Lines of `content` without their "\n" (content must end with one).
std::vector<std::string> SplitLines(const std::string& content) {
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < content.size()) {
    const size_t nl = content.find('\n', pos);
    lines.push_back(content.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return lines;
}

std::string JoinLines(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& line : lines) out += line + "\n";
  return out;
}

// The CA, two sites' audit keys, and site-1's real 20-entry log, made once for all tests.
struct Shared {
  KeyAndCert ca = CreateCa("audit-test-ca", 30);
  KeyAndCert site1 = IssueAuditCertificate(ca, "site-1");
  KeyAndCert site2 = IssueAuditCertificate(ca, "site-2");
  TempDir dir{"fedmed-privacy-log-test"};
  std::string log_path = dir / "site-1.jsonl";
  testing::WrittenSiteLog written =
      testing::WriteSiteLog(log_path, dir / "ledger.json", site1, "site-1");
  std::string content = ReadFile(log_path);
  std::vector<std::string> lines = SplitLines(content);
  AuditVerifyingKey key1 = AuditVerifyingKey::FromCertificate(site1.cert_pem, "site-1");
  AuditVerifyingKey key2 = AuditVerifyingKey::FromCertificate(site2.cert_pem, "site-2");
  // states[k]: the verifier after checking the first k lines of `content`; offsets[k]: where
  // line k + 1 starts (offsets[20] = content.size()).
  std::vector<PrivacyLogVerifier> states;
  std::vector<size_t> offsets;

  Shared() {
    states.emplace_back(key1);
    offsets.push_back(0);
    for (const std::string& line : lines) {
      PrivacyLogVerifier next = states.back();
      std::string what;
      if (next.Next(line, &what) != PrivacyLogVerifier::Failure::kNone) {
        throw std::runtime_error("the test log does not verify: " + what);
      }
      states.push_back(next);
      offsets.push_back(offsets.back() + line.size() + 1);
    }
  }

  // Verification of `mutated`, a copy of `content` changed only at or after line
  // `first_changed_line` (1-based), resumed from the verifier's state after the unchanged lines
  // before it: the same state machine run over the same bytes as a verification from the first
  // line, without redoing the unchanged prefix (checked against full verifications below).
  LogVerification VerifyFromLine(const std::string& mutated, size_t first_changed_line) const {
    return VerifyLogContent(std::string_view(mutated).substr(offsets[first_changed_line - 1]),
                            states[first_changed_line - 1]);
  }
};

class PrivacyLogTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { shared_ = new Shared(); }
  static void TearDownTestSuite() {
    delete shared_;
    shared_ = nullptr;
  }

  static LogVerification Verify(const std::string& content) {
    return VerifyLogContent(content, PrivacyLogVerifier(shared_->key1));
  }

  static Shared* shared_;
};

Shared* PrivacyLogTest::shared_ = nullptr;

TEST_F(PrivacyLogTest, RealisticSiteLogHasTwentyCanonicalChainedSignedEntries) {
  const Shared& s = *shared_;
  ASSERT_EQ(s.lines.size(), 20u);
  const std::vector<std::string> events = {
      "start",   "registered", "trained", "trained", "trained",  "trained", "trained",
      "trained", "trained",    "trained", "stop",    "start",    "budget",  "registered",
      "trained", "trained",    "trained", "trained", "declined", "stop"};
  std::string prev = GenesisHash("site-1");
  EXPECT_EQ(prev, Sha256Hex(std::string("fedmed privacy log v1\n") + "site-1"));
  for (size_t i = 0; i < s.lines.size(); ++i) {
    SCOPED_TRACE("line " + std::to_string(i + 1));
    const json entry = json::parse(s.lines[i]);
    EXPECT_EQ(entry.dump(), s.lines[i]) << "every line is its canonical serialisation";
    std::vector<std::string> keys;
    for (auto it = entry.begin(); it != entry.end(); ++it) keys.push_back(it.key());
    EXPECT_EQ(keys, (std::vector<std::string>{"data", "event", "prev", "seq", "sig", "time",
                                              "writer"}));
    EXPECT_EQ(entry["seq"].get<int64_t>(), static_cast<int64_t>(i));
    EXPECT_EQ(entry["writer"], "site-1");
    EXPECT_EQ(entry["event"], events[i]);
    EXPECT_EQ(entry["prev"], prev);
    EXPECT_EQ(entry["sig"].get<std::string>().size(), 128u);
    EXPECT_TRUE(ParseLogTime(entry["time"].get<std::string>()).has_value());
    const std::string sig_hex = entry["sig"].get<std::string>();
    std::string sig;
    for (size_t k = 0; k < sig_hex.size(); k += 2) {
      sig += static_cast<char>(std::stoi(sig_hex.substr(k, 2), nullptr, 16));
    }
    EXPECT_TRUE(s.key1.Verify(SignedBytes(entry), sig));
    EXPECT_FALSE(s.key2.Verify(SignedBytes(entry), sig));
    prev = Sha256Hex(s.lines[i]);
  }
  // A trained entry carries exactly the mechanism, the spend and the update's digest.
  const json trained = json::parse(s.lines[2])["data"];
  std::vector<std::string> fields;
  for (auto it = trained.begin(); it != trained.end(); ++it) fields.push_back(it.key());
  EXPECT_EQ(fields, (std::vector<std::string>{"budget_epsilon", "clipping_norm", "conversion",
                                              "delta", "epsilon_round", "epsilon_total",
                                              "mechanism", "noise_multiplier", "round",
                                              "sampling_rate", "steps", "update_sha256"}));
  EXPECT_EQ(trained["update_sha256"], Sha256Hex(testing::UpdateBytes("site-1", 1)));

  const LogVerification ok = VerifyLog(s.log_path, s.site1.cert_pem, s.ca.cert_pem);
  EXPECT_TRUE(ok.ok) << ok.what;
  EXPECT_EQ(ok.entries, 20);
  const std::vector<PrivacyLogEntry> entries = ReadLog(s.log_path);
  ASSERT_EQ(entries.size(), 20u);
  EXPECT_EQ(entries[19].line, 20);
  EXPECT_EQ(entries[19].event, "stop");
  EXPECT_EQ(entries[19].hash, Sha256Hex(s.lines[19]));
  EXPECT_EQ(s.written.trained_entries.size(), 12u);
  EXPECT_EQ(s.written.trained_entries[0].hash, Sha256Hex(s.lines[2]));
  std::printf("example line: %s\n", s.lines[4].c_str());
}

// Every byte of the file, changed (XOR 0x01), is caught, at the line that holds the byte (a
// line's "\n" belongs to it). Every 20th change is also verified from the first line, to show
// that resuming gives exactly the same answer.
TEST_F(PrivacyLogTest, EverySingleByteChangeIsDetectedAtItsLine) {
  const Shared& s = *shared_;
  ASSERT_TRUE(Verify(s.content).ok);
  const auto start = std::chrono::steady_clock::now();
  int missed = 0;
  int misplaced = 0;
  int full_checks = 0;
  size_t line = 1;  // 1-based line of `pos`
  for (size_t pos = 0; pos < s.content.size(); ++pos) {
    if (pos >= s.offsets[line]) ++line;
    std::string mutated = s.content;
    mutated[pos] = static_cast<char>(mutated[pos] ^ 0x01);
    ASSERT_NE(mutated[pos], s.content[pos]);
    const LogVerification r = s.VerifyFromLine(mutated, line);
    if (r.ok) {
      if (++missed <= 5) ADD_FAILURE() << "undetected change at byte " << pos;
    } else if (r.first_bad_line != static_cast<int64_t>(line)) {
      if (++misplaced <= 5) {
        ADD_FAILURE() << "byte " << pos << " of line " << line << " reported at line "
                      << r.first_bad_line << ": " << r.what;
      }
    }
    if (pos % 20 == 0) {
      const LogVerification full = Verify(mutated);
      EXPECT_EQ(full.ok, r.ok) << pos;
      EXPECT_EQ(full.first_bad_line, r.first_bad_line) << pos;
      EXPECT_EQ(full.entries, r.entries) << pos;
      EXPECT_EQ(full.what, r.what) << pos;
      ++full_checks;
    }
  }
  EXPECT_EQ(missed, 0);
  EXPECT_EQ(misplaced, 0);
  std::printf("%zu single-byte changes (XOR 0x01) of a %zu-byte, 20-entry log: all detected at "
              "their line (%d also verified from line 1) in %.2f s\n",
              s.content.size(), s.content.size(), full_checks,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

// Every other single-bit flip of every byte, and every possible value of every byte of the
// last line (the one no later "prev" protects: only its own signature and canonical form do).
TEST_F(PrivacyLogTest, EveryBitFlipAndEveryValueOfTheLastLineIsDetected) {
  const Shared& s = *shared_;
  const std::vector<size_t>& offsets = s.offsets;
  const auto start = std::chrono::steady_clock::now();
  int64_t mutations = 0;
  int missed = 0;
  const auto check = [&](size_t line_index, size_t pos, char value) {
    std::string mutated = s.content;
    mutated[pos] = value;
    const LogVerification r = s.VerifyFromLine(mutated, line_index + 1);
    ++mutations;
    if (r.ok || r.first_bad_line != static_cast<int64_t>(line_index) + 1) {
      if (++missed <= 5) {
        ADD_FAILURE() << "byte " << pos << " set to " << static_cast<int>(
                                                             static_cast<unsigned char>(value))
                      << ": " << (r.ok ? "undetected" : "reported at line " +
                                                            std::to_string(r.first_bad_line));
      }
    }
  };
  for (size_t line = 0; line < s.lines.size(); ++line) {
    for (size_t pos = offsets[line]; pos < offsets[line + 1]; ++pos) {
      for (int bit = 1; bit < 8; ++bit) {
        check(line, pos, static_cast<char>(s.content[pos] ^ (1 << bit)));
      }
    }
  }
  const size_t last = s.lines.size() - 1;
  for (size_t pos = offsets[last]; pos < offsets[last + 1]; ++pos) {
    for (int value = 0; value < 256; ++value) {
      if (static_cast<char>(value) == s.content[pos]) continue;
      check(last, pos, static_cast<char>(value));
    }
  }
  EXPECT_EQ(missed, 0);
  std::printf("%lld further single-byte changes (7 bit flips of every byte, all 255 other values "
              "of every byte of the last line): all detected in %.2f s\n",
              static_cast<long long>(mutations),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

TEST_F(PrivacyLogTest, EveryDeletedLineIsDetectedExceptAtTheEnd) {
  const Shared& s = *shared_;
  for (size_t i = 0; i < s.lines.size(); ++i) {
    std::vector<std::string> lines = s.lines;
    lines.erase(lines.begin() + static_cast<std::ptrdiff_t>(i));
    const LogVerification r = Verify(JoinLines(lines));
    if (i + 1 < s.lines.size()) {
      EXPECT_FALSE(r.ok) << "deleting line " << i + 1 << " went unnoticed";
      EXPECT_EQ(r.first_bad_line, static_cast<int64_t>(i) + 1) << r.what;
      EXPECT_TRUE(Contains(r.what, "seq is " + std::to_string(i + 1) + ", expected " +
                                       std::to_string(i)));
    } else {
      // The hash chain cannot show entries missing from the end: the shorter log is a valid
      // prefix. The coordinator's log anchors the sites' logs (RoundEvent::log_heads) so that
      // cross-check catches it (log_audit_test).
      EXPECT_TRUE(r.ok) << r.what;
      EXPECT_EQ(r.entries, 19);
    }
  }
}

TEST_F(PrivacyLogTest, EverySwappedPairOfLinesIsDetected) {
  const Shared& s = *shared_;
  int pairs = 0;
  for (size_t i = 0; i < s.lines.size(); ++i) {
    for (size_t j = i + 1; j < s.lines.size(); ++j) {
      std::vector<std::string> lines = s.lines;
      std::swap(lines[i], lines[j]);
      const LogVerification r = Verify(JoinLines(lines));
      EXPECT_FALSE(r.ok) << "swapping lines " << i + 1 << " and " << j + 1;
      EXPECT_EQ(r.first_bad_line, static_cast<int64_t>(i) + 1) << r.what;
      ++pairs;
    }
  }
  EXPECT_EQ(pairs, 190);
}

TEST_F(PrivacyLogTest, TruncatedTailIsDetected) {
  const Shared& s = *shared_;
  const size_t last_start = s.offsets[19];
  for (size_t n = last_start + 1; n < s.content.size(); ++n) {
    const LogVerification r = s.VerifyFromLine(s.content.substr(0, n), 20);
    EXPECT_FALSE(r.ok) << "cut to " << n << " bytes";
    EXPECT_EQ(r.first_bad_line, 20) << r.what;
  }
  const LogVerification mid = Verify(s.content.substr(0, last_start + 100));
  EXPECT_FALSE(mid.ok);
  EXPECT_EQ(mid.first_bad_line, 20);
  const LogVerification no_newline = Verify(s.content.substr(0, s.content.size() - 1));
  EXPECT_TRUE(Contains(no_newline.what, "no newline at the end"));
  EXPECT_EQ(no_newline.entries, 19);
  // ReadLog refuses it as well.
  TempDir dir;
  WriteRaw(dir / "cut.jsonl", s.content.substr(0, s.content.size() - 10));
  try {
    ReadLog(dir / "cut.jsonl");
    FAIL() << "a cut-short log was read";
  } catch (const FormatError& e) {
    EXPECT_TRUE(Contains(e.what(), "line 20"));
  }
}

// A line crafted as the next entry of site-1's log (right seq, prev, writer) and signed with
// `key`.
std::string CraftEntry(const std::string& prev_line, int64_t seq, const json& data,
                       const AuditSigningKey& key, const std::string& writer = "site-1") {
  json entry = {{"seq", seq},
                {"time", FormatLogTime(std::time(nullptr), 0)},
                {"writer", writer},
                {"event", "trained"},
                {"data", data},
                {"prev", prev_line.empty() ? GenesisHash(writer) : Sha256Hex(prev_line)}};
  const std::string sig = key.Sign(entry.dump());
  entry["sig"] = ToHex(sig.data(), sig.size());
  return entry.dump();
}

TEST_F(PrivacyLogTest, RecordSignedWithAnotherSitesKeyIsRejected) {
  const Shared& s = *shared_;
  const AuditSigningKey own = AuditSigningKey::FromPem(s.site1.key_pem, "site-1");
  const AuditSigningKey other = AuditSigningKey::FromPem(s.site2.key_pem, "site-2");
  const json data = json::parse(s.lines[16])["data"];

  // Appended as entry 21: accepted with site-1's key, rejected with site-2's.
  const std::string good = CraftEntry(s.lines.back(), 20, data, own);
  EXPECT_TRUE(Verify(s.content + good + "\n").ok);
  const LogVerification forged =
      Verify(s.content + CraftEntry(s.lines.back(), 20, data, other) + "\n");
  EXPECT_FALSE(forged.ok);
  EXPECT_EQ(forged.first_bad_line, 21);
  EXPECT_TRUE(Contains(forged.what, "signature does not verify"));

  // Line 10 replaced by a re-signed copy with a lower epsilon: site-2's key cannot do it.
  json altered = json::parse(s.lines[9])["data"];
  altered["epsilon_total"] = altered["epsilon_total"].get<double>() / 2;
  std::vector<std::string> lines = s.lines;
  lines[9] = CraftEntry(lines[8], 9, altered, other);
  const LogVerification r = Verify(JoinLines(lines));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_line, 10);
  EXPECT_TRUE(Contains(r.what, "signature does not verify"));

  // A whole log written by site-2 as itself: fine under site-2's certificate, not site-1's.
  TempDir dir;
  testing::WriteSiteLog(dir / "site-2.jsonl", dir / "ledger.json", s.site2, "site-2");
  EXPECT_TRUE(VerifyLog(dir / "site-2.jsonl", s.site2.cert_pem, s.ca.cert_pem).ok);
  const LogVerification wrong_cert = VerifyLog(dir / "site-2.jsonl", s.site1.cert_pem);
  EXPECT_FALSE(wrong_cert.ok);
  EXPECT_EQ(wrong_cert.first_bad_line, 1);
  EXPECT_TRUE(Contains(wrong_cert.what, "writer is \"site-2\", expected \"site-1\""));

  // A log signed by site-2's key that claims to be site-1's.
  std::string claimed;
  std::string prev_line;
  for (int64_t seq = 0; seq < 3; ++seq) {
    prev_line = CraftEntry(prev_line, seq, data, other, "site-1");
    claimed += prev_line + "\n";
  }
  const LogVerification impostor = Verify(claimed);
  EXPECT_FALSE(impostor.ok);
  EXPECT_EQ(impostor.first_bad_line, 1);
  EXPECT_TRUE(Contains(impostor.what, "signature does not verify"));
  const LogVerification as_site2 = VerifyLogContent(claimed, PrivacyLogVerifier(s.key2));
  EXPECT_FALSE(as_site2.ok);
  EXPECT_TRUE(Contains(as_site2.what, "writer is \"site-1\", expected \"site-2\""));
}

TEST_F(PrivacyLogTest, CertificateMustBeAnAuditCertificateOfTheFederation) {
  const Shared& s = *shared_;
  // Another federation's CA issued a certificate with the same CN and... another key, so the
  // signatures fail; with the key copied into a certificate of another CA, the CA check fails.
  const KeyAndCert other_ca = CreateCa("other-ca", 30);
  const LogVerification wrong_ca = VerifyLog(s.log_path, s.site1.cert_pem, other_ca.cert_pem);
  EXPECT_FALSE(wrong_ca.ok);
  EXPECT_EQ(wrong_ca.first_bad_line, 0);
  EXPECT_TRUE(Contains(wrong_ca.what, "not issued by the federation CA")) << wrong_ca.what;

  // A TLS certificate instead of the audit certificate.
  CertificateRequest tls;
  tls.common_name = "site-1";
  tls.validity_days = 10;
  const KeyAndCert tls_cert = IssueCertificate(s.ca, tls);
  const LogVerification not_audit = VerifyLog(s.log_path, tls_cert.cert_pem, s.ca.cert_pem);
  EXPECT_FALSE(not_audit.ok);
  EXPECT_EQ(not_audit.first_bad_line, 0);
  EXPECT_TRUE(Contains(not_audit.what, "not Ed25519")) << not_audit.what;

  // The audit certificate is valid for nothing but audit logs.
  const std::time_t now = std::time(nullptr);
  EXPECT_TRUE(VerifyPeerCertificate(s.site1.cert_pem, s.ca.cert_pem, now,
                                    CertificatePurpose::kAuditLog).ok);
  EXPECT_FALSE(VerifyPeerCertificate(s.site1.cert_pem, s.ca.cert_pem, now,
                                     CertificatePurpose::kClientAuth).ok);
  EXPECT_FALSE(VerifyPeerCertificate(s.site1.cert_pem, s.ca.cert_pem, now,
                                     CertificatePurpose::kServerAuth).ok);
  const PeerCheck tls_as_audit =
      VerifyPeerCertificate(tls_cert.cert_pem, s.ca.cert_pem, now, CertificatePurpose::kAuditLog);
  EXPECT_FALSE(tls_as_audit.ok);
  EXPECT_TRUE(Contains(tls_as_audit.reason, "not an audit-log certificate"));
  EXPECT_THROW(AuditSigningKey::FromPem(tls_cert.key_pem, "tls key"), CryptoError);

  // Entries written outside the certificate's validity are refused.
  CertificateRequest expired;
  expired.common_name = "site-1";
  expired.client_auth = false;
  expired.document_signing = true;
  expired.key_type = CertificateKeyType::kEd25519;
  expired.not_before_offset_seconds = -250;  // within the CA's validity (from now - 300 s)
  expired.not_after_offset_seconds = -100;
  const KeyAndCert old = IssueCertificate(s.ca, expired);
  TempDir dir;
  {
    PrivacyLogWriter log(dir / "late.jsonl", old.key_pem, old.cert_pem);
    log.Append(kEventStart, {{"role", "site"}});
  }
  const LogVerification late = VerifyLog(dir / "late.jsonl", old.cert_pem, s.ca.cert_pem);
  EXPECT_FALSE(late.ok);
  EXPECT_EQ(late.first_bad_line, 1);
  EXPECT_TRUE(Contains(late.what, "outside the audit certificate's validity")) << late.what;
}

TEST_F(PrivacyLogTest, TornTailIsCutAwayAndTheRecoveryLogged) {
  const Shared& s = *shared_;
  TempDir dir;
  const std::string path = dir / "torn.jsonl";
  const std::string torn = "{\"data\":{\"budget_epsilon\":2.15,\"clipping_n";
  WriteRaw(path, s.content + torn);
  {
    PrivacyLogWriter log(path, s.site1.key_pem, s.site1.cert_pem);
    ASSERT_TRUE(log.recovery().has_value());
    EXPECT_EQ(log.recovery()->dropped_bytes, static_cast<int64_t>(torn.size()));
    EXPECT_EQ(log.recovery()->dropped_sha256, Sha256Hex(torn));
    EXPECT_EQ(log.recovery()->last_seq, 19);
    EXPECT_FALSE(log.recovery()->completed_entry);
    EXPECT_EQ(log.entries(), 21);
    log.Append(kEventStart, {{"role", "site"}});
  }
  const LogVerification r = VerifyLog(path, s.site1.cert_pem, s.ca.cert_pem);
  EXPECT_TRUE(r.ok) << r.what;
  EXPECT_EQ(r.entries, 22);
  const std::vector<PrivacyLogEntry> entries = ReadLog(path);
  EXPECT_EQ(entries[20].event, "recovered");
  EXPECT_EQ(entries[20].data["dropped_bytes"], torn.size());
  EXPECT_EQ(entries[20].data["dropped_sha256"], Sha256Hex(torn));
  EXPECT_EQ(ReadFile(path).substr(0, s.content.size()), s.content)
      << "good entries kept as they were";

  // A last line that is not JSON although it ends in a newline (zeros from a crash).
  const std::string zeros(7, '\0');
  WriteRaw(path, s.content + zeros + "\n");
  {
    PrivacyLogWriter log(path, s.site1.key_pem, s.site1.cert_pem);
    ASSERT_TRUE(log.recovery().has_value());
    EXPECT_EQ(log.recovery()->dropped_bytes, 8);
  }
  EXPECT_TRUE(VerifyLog(path, s.site1.cert_pem).ok);

  // A whole entry that only lacks its newline is kept and completed.
  WriteRaw(path, s.content.substr(0, s.content.size() - 1));
  {
    PrivacyLogWriter log(path, s.site1.key_pem, s.site1.cert_pem);
    ASSERT_TRUE(log.recovery().has_value());
    EXPECT_TRUE(log.recovery()->completed_entry);
    EXPECT_EQ(log.recovery()->dropped_bytes, 0);
    EXPECT_EQ(log.entries(), 21);
  }
  EXPECT_EQ(ReadFile(path).substr(0, s.content.size()), s.content);
  EXPECT_TRUE(VerifyLog(path, s.site1.cert_pem).ok);

  // A clean log opens without recovery.
  WriteRaw(path, s.content);
  PrivacyLogWriter clean(path, s.site1.key_pem, s.site1.cert_pem);
  EXPECT_FALSE(clean.recovery().has_value());
  EXPECT_EQ(clean.entries(), 20);
}

TEST_F(PrivacyLogTest, WriterRefusesABrokenOrForeignLog) {
  const Shared& s = *shared_;
  TempDir dir;
  const std::string path = dir / "broken.jsonl";
  std::string tampered = s.content;
  size_t line6 = 0;  // where line 6 (round 4's trained entry) starts
  for (size_t i = 0; i < 5; ++i) line6 += s.lines[i].size() + 1;
  const size_t pos = tampered.find("\"epsilon_total\":", line6) + 16;  // its first digit
  ASSERT_LT(pos, line6 + s.lines[5].size());
  tampered[pos] = tampered[pos] == '1' ? '2' : '1';
  WriteRaw(path, tampered);
  const int64_t bad_line = 1 + std::count(tampered.begin(), tampered.begin() + pos, '\n');
  try {
    PrivacyLogWriter log(path, s.site1.key_pem, s.site1.cert_pem);
    FAIL() << "a tampered log was opened for appending";
  } catch (const FormatError& e) {
    EXPECT_TRUE(Contains(e.what(), path + ": line " + std::to_string(bad_line) + ": "));
    EXPECT_TRUE(Contains(e.what(), "refusing to append"));
  }
  EXPECT_EQ(ReadFile(path), tampered) << "a broken log is left as it is";

  // site-1's log opened with site-2's key.
  WriteRaw(path, s.content);
  EXPECT_THROW(PrivacyLogWriter(path, s.site2.key_pem, s.site2.cert_pem), FormatError);
  // A key that does not belong to the certificate.
  EXPECT_THROW(PrivacyLogWriter(dir / "new.jsonl", s.site2.key_pem, s.site1.cert_pem),
               CryptoError);
}

TEST_F(PrivacyLogTest, OneWriterPerFileAndOnlyFiniteData) {
  const Shared& s = *shared_;
  TempDir dir;
  const std::string path = dir / "log.jsonl";
  PrivacyLogWriter log(path, s.site1.key_pem, s.site1.cert_pem);
  try {
    PrivacyLogWriter second(path, s.site1.key_pem, s.site1.cert_pem);
    FAIL() << "two writers on one log";
  } catch (const Error& e) {
    EXPECT_TRUE(Contains(e.what(), "in use by another writer"));
  }
  EXPECT_THROW(log.Append(kEventTrained, {{"epsilon_total", std::nan("")}}), Error);
  EXPECT_THROW(log.Append(kEventTrained,
                          {{"x", {{"y", std::numeric_limits<double>::infinity()}}}}),
               Error);
  EXPECT_THROW(log.Append(kEventTrained, json::array({1, 2})), Error);
  EXPECT_THROW(log.Append("", json::object()), Error);
  EXPECT_EQ(log.entries(), 0);
  const PrivacyLogEntry first =
      log.Append(kEventStart, {{"role", "site"}, {"note", "ünïcödé ✓"}});
  EXPECT_EQ(first.seq, 0);
  EXPECT_EQ(first.prev, GenesisHash("site-1"));
  const PrivacyLogEntry second = log.Append(kEventStop, json::object());
  EXPECT_EQ(second.prev, first.hash);
  EXPECT_EQ(log.writer(), "site-1");
  EXPECT_TRUE(VerifyLog(path, s.site1.cert_pem).ok);
  // The file's entries are on disk as each Append returns.
  EXPECT_EQ(SplitLines(ReadFile(path)).size(), 2u);
}

TEST(PrivacyLogTimeTest, FormatsAndParsesUtcMilliseconds) {
  EXPECT_EQ(FormatLogTime(0, 5), "1970-01-01T00:00:00.005Z");
  EXPECT_EQ(FormatLogTime(1748781296, 789), "2025-06-01T12:34:56.789Z");
  EXPECT_EQ(ParseLogTime("2025-06-01T12:34:56.789Z"), std::optional<std::time_t>(1748781296));
  EXPECT_FALSE(ParseLogTime("2025-02-30T12:34:56.789Z").has_value());
  EXPECT_FALSE(ParseLogTime("2025-06-01 12:34:56.789Z").has_value());
  EXPECT_FALSE(ParseLogTime("2025-06-01T12:34:56Z").has_value());
  EXPECT_FALSE(ParseLogTime("2025-06-01T12:34:56.789+00:00").has_value());
}

}  // namespace
}  // namespace fedmed
