#include "common/secagg/stage_messages.h"

#include <algorithm>

#include "common/crypto/audit_key.h"
#include "common/crypto/pki.h"
#include "common/secagg/key_agreement.h"
#include "common/util/byte_order.h"

namespace fedmed {
namespace {

constexpr char kDomain[] = "fedmed-secagg-v1";

}  // namespace

// ---- domain separation ----

void AppendLengthPrefixed(std::string* out, std::string_view bytes) {
  AppendBigEndian32(out, static_cast<uint32_t>(bytes.size()));
  out->append(bytes.data(), bytes.size());
}

std::string SecAggContext(const SecAggRoundConfig& c, const char* purpose) {
  std::string s(kDomain);
  AppendLengthPrefixed(&s, purpose);
  AppendBigEndian32(&s, static_cast<uint32_t>(c.round));
  AppendBigEndian32(&s, static_cast<uint32_t>(c.attempt));
  return s;
}

std::string SecAggPairContext(const SecAggRoundConfig& c, const char* purpose, uint32_t a,
                              uint32_t b) {
  std::string s = SecAggContext(c, purpose);
  AppendBigEndian32(&s, std::min(a, b));
  AppendBigEndian32(&s, std::max(a, b));
  return s;
}

std::string SecAggShareAad(const SecAggRoundConfig& c, uint32_t from, uint32_t to) {
  std::string s = SecAggContext(c, "share");
  AppendBigEndian32(&s, from);
  AppendBigEndian32(&s, to);
  return s;
}

// ---- stage 0 ----

std::string AdvertisedKeysMessage(const SecAggRoundConfig& config, const AdvertisedKeys& keys) {
  std::string m = SecAggContext(config, "advertise");
  AppendBigEndian32(&m, keys.index);
  AppendLengthPrefixed(&m, keys.site);
  AppendLengthPrefixed(&m, keys.c_public_key);
  AppendLengthPrefixed(&m, keys.s_public_key);
  return m;
}

std::string CheckAdvertisedKeys(const SecAggRoundConfig& config, const AdvertisedKeys& keys,
                                const std::string& ca_pem, std::time_t now) {
  const std::string who = "site '" + keys.site + "'";
  if (keys.index == 0 || config.IndexOf(keys.site) != keys.index) {
    return who + " is not participant " + std::to_string(keys.index) + " of this round";
  }
  if (keys.c_public_key.size() != kX25519KeyBytes || keys.s_public_key.size() != kX25519KeyBytes) {
    return who + " advertised public keys that are not 32-byte X25519 keys";
  }
  const PeerCheck check =
      VerifyPeerCertificate(keys.certificate_pem, ca_pem, now, CertificatePurpose::kAuditLog);
  if (!check.ok) return who + ": its signing certificate is refused: " + check.reason;
  if (check.common_name != keys.site) {
    return who + " signed with the certificate of CN=" + check.common_name;
  }
  try {
    const AuditVerifyingKey key =
        AuditVerifyingKey::FromCertificate(keys.certificate_pem, "signing certificate of " + who);
    if (!key.Verify(AdvertisedKeysMessage(config, keys), keys.signature)) {
      return who + ": the signature of its advertised keys does not verify";
    }
  } catch (const Error& e) {
    return who + ": " + e.what();
  }
  return "";
}

}  // namespace fedmed
