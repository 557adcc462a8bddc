#include "common/audit/privacy_log.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <tuple>
#include <utility>

#include "common/crypto/pki.h"
#include "common/crypto/sha256.h"
#include "common/util/error.h"
#include "common/util/file_io.h"

namespace fedmed {

using json = nlohmann::json;

namespace {

constexpr const char* kGenesisPrefix = "fedmed privacy log v1\n";

std::string SystemError(const std::string& path, const std::string& step) {
  return "privacy log '" + path + "': " + step + ": " + std::strerror(errno);
}

bool IsLowerHex(std::string_view text) {
  for (const char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// `hex` (even length, lowercase; checked by the caller) as bytes.
std::string FromHex(std::string_view hex) {
  std::string bytes(hex.size() / 2, '\0');
  const auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  for (size_t i = 0; i < bytes.size(); ++i) {
    bytes[i] = static_cast<char>(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
  }
  return bytes;
}

// Throws Error naming `where` if `value` holds a NaN or infinite number anywhere.
void CheckFinite(const json& value, const std::string& where) {
  if (value.is_number_float() && !std::isfinite(value.get<double>())) {
    throw Error("privacy log entry: " + where + " is not a finite number");
  }
  if (value.is_object()) {
    for (auto it = value.begin(); it != value.end(); ++it) CheckFinite(*it, where + "." + it.key());
  } else if (value.is_array()) {
    for (size_t i = 0; i < value.size(); ++i) {
      CheckFinite(value[i], where + "[" + std::to_string(i) + "]");
    }
  }
}

std::string NowLogTime() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return FormatLogTime(ts.tv_sec, static_cast<int>(ts.tv_nsec / 1000000));
}

}  // namespace

// ---- format helpers ----

std::string GenesisHash(const std::string& writer) {
  return Sha256Hex(std::string(kGenesisPrefix) + writer);
}

std::string SignedBytes(const json& entry) {
  json copy = entry;
  copy.erase("sig");
  return copy.dump();
}

std::string FormatLogTime(std::time_t t, int millis) {
  std::tm tm{};
  char text[64];
  if (gmtime_r(&t, &tm) == nullptr ||
      std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
    return "invalid-time";
  }
  char out[96];
  std::snprintf(out, sizeof(out), "%s.%03dZ", text, millis);
  return out;
}

std::optional<std::time_t> ParseLogTime(const std::string& text) {
  // YYYY-MM-DDTHH:MM:SS.mmmZ
  static constexpr char kPattern[] = "dddd-dd-ddTdd:dd:dd.dddZ";
  if (text.size() != sizeof(kPattern) - 1) return std::nullopt;
  for (size_t i = 0; i < text.size(); ++i) {
    const bool digit = text[i] >= '0' && text[i] <= '9';
    if (kPattern[i] == 'd' ? !digit : text[i] != kPattern[i]) return std::nullopt;
  }
  std::tm tm{};
  tm.tm_year = std::stoi(text.substr(0, 4)) - 1900;
  tm.tm_mon = std::stoi(text.substr(5, 2)) - 1;
  tm.tm_mday = std::stoi(text.substr(8, 2));
  tm.tm_hour = std::stoi(text.substr(11, 2));
  tm.tm_min = std::stoi(text.substr(14, 2));
  tm.tm_sec = std::stoi(text.substr(17, 2));
  const int millis = std::stoi(text.substr(20, 3));
  const std::time_t t = timegm(&tm);
  // timegm normalises out-of-range fields (Feb 30 -> Mar 2): require a round trip.
  if (FormatLogTime(t, millis) != text) return std::nullopt;
  return t;
}

// ---- verifying ----

PrivacyLogVerifier::PrivacyLogVerifier(AuditVerifyingKey key, bool check_time)
    : key_(std::move(key)), check_time_(check_time) {
  writer_ = key_->common_name();
  prev_ = GenesisHash(writer_);
}

PrivacyLogVerifier::PrivacyLogVerifier() = default;

PrivacyLogVerifier::Failure PrivacyLogVerifier::Next(std::string_view line, std::string* what,
                                                     PrivacyLogEntry* entry) {
  const auto fail = [&](Failure failure, const std::string& message) {
    if (what != nullptr) *what = message;
    return failure;
  };
  if (line.empty()) return fail(Failure::kUnparseable, "empty line");
  json j;
  try {
    j = json::parse(line.data(), line.data() + line.size());
  } catch (const json::exception& e) {
    return fail(Failure::kUnparseable, std::string("not JSON (") + e.what() + ")");
  }
  if (!j.is_object()) return fail(Failure::kUnparseable, "not a JSON object");

  // Exactly the seven members, with their types.
  static const char* const kMembers[] = {"data", "event", "prev", "seq", "sig", "time", "writer"};
  for (const char* member : kMembers) {
    if (!j.contains(member)) return fail(Failure::kInvalid, std::string("no \"") + member + "\"");
  }
  if (j.size() != std::size(kMembers)) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      bool known = false;
      for (const char* member : kMembers) known = known || it.key() == member;
      if (!known) return fail(Failure::kInvalid, "unexpected member \"" + it.key() + "\"");
    }
  }
  if (!j["seq"].is_number_unsigned()) {
    return fail(Failure::kInvalid, "seq is not a non-negative integer");
  }
  for (const char* member : {"event", "prev", "sig", "time", "writer"}) {
    if (!j[member].is_string()) {
      return fail(Failure::kInvalid, std::string(member) + " is not a string");
    }
  }
  if (!j["data"].is_object()) return fail(Failure::kInvalid, "data is not a JSON object");
  std::string canonical;
  try {
    canonical = j.dump();
  } catch (const json::exception& e) {
    return fail(Failure::kInvalid, std::string("cannot be serialised (") + e.what() + ")");
  }
  if (canonical != line) {
    return fail(Failure::kInvalid,
                "not in canonical form (the line differs from its canonical serialisation: "
                "spacing, number or escape formatting was changed)");
  }

  const std::string& writer = j["writer"].get_ref<const std::string&>();
  const bool first = next_seq_ == 0;
  if (key_ || !first) {
    if (writer != writer_) {
      return fail(Failure::kInvalid,
                  "writer is \"" + writer + "\", expected \"" + writer_ + "\"" +
                      (key_ ? " (the audit certificate's CN)" : " (the log's first entry)"));
    }
  }
  const uint64_t seq = j["seq"].get<uint64_t>();
  if (seq != static_cast<uint64_t>(next_seq_)) {
    return fail(Failure::kInvalid,
                "seq is " + std::to_string(seq) + ", expected " + std::to_string(next_seq_) +
                    " (an entry is missing, duplicated or out of order)");
  }
  const std::string& prev = j["prev"].get_ref<const std::string&>();
  const std::string expected_prev = first ? GenesisHash(writer) : prev_;
  if (prev != expected_prev) {
    return fail(Failure::kInvalid,
                first ? "prev is not the genesis hash of writer \"" + writer +
                            "\" (the log does not start with its first entry)"
                      : "prev is not the SHA-256 of the previous line (an earlier entry was "
                        "altered, removed or reordered)");
  }
  const std::string& sig = j["sig"].get_ref<const std::string&>();
  if (sig.size() != 2 * kEd25519SignatureSize || !IsLowerHex(sig)) {
    return fail(Failure::kInvalid, "sig is not 128 lowercase hex characters");
  }
  if (key_ && !key_->Verify(SignedBytes(j), FromHex(sig))) {
    return fail(Failure::kInvalid,
                "signature does not verify under the audit certificate of \"" + writer_ +
                    "\" (the entry was altered, or signed by another key)");
  }
  const std::string& time = j["time"].get_ref<const std::string&>();
  const std::optional<std::time_t> t = ParseLogTime(time);
  if (!t) return fail(Failure::kInvalid, "time \"" + time + "\" is not YYYY-MM-DDTHH:MM:SS.mmmZ");
  if (check_time_ && key_ && (*t < key_->not_before() || *t > key_->not_after())) {
    return fail(Failure::kInvalid, "written at " + time +
                                       ", outside the audit certificate's validity (" +
                                       FormatUtc(key_->not_before()) + " to " +
                                       FormatUtc(key_->not_after()) + ")");
  }
  const std::string& event = j["event"].get_ref<const std::string&>();
  if (event.empty()) return fail(Failure::kInvalid, "event is empty");

  if (entry != nullptr) {
    entry->line = next_seq_ + 1;
    entry->seq = static_cast<int64_t>(seq);
    entry->time = time;
    entry->writer = writer;
    entry->event = event;
    entry->data = j["data"];
    entry->prev = prev;
    entry->sig = sig;
  }
  if (first) writer_ = writer;
  prev_ = Sha256Hex(line);
  if (entry != nullptr) entry->hash = prev_;
  ++next_seq_;
  return Failure::kNone;
}

LogVerification VerifyLogContent(std::string_view content, PrivacyLogVerifier verifier) {
  LogVerification result;
  size_t pos = 0;
  while (pos < content.size()) {
    const size_t newline = content.find('\n', pos);
    const int64_t line_number = verifier.entries() + 1;
    const std::string_view line =
        content.substr(pos, newline == std::string_view::npos ? std::string_view::npos
                                                              : newline - pos);
    std::string what;
    if (verifier.Next(line, &what) != PrivacyLogVerifier::Failure::kNone) {
      result.entries = verifier.entries();
      result.first_bad_line = line_number;
      result.what = what;
      return result;
    }
    if (newline == std::string_view::npos) {
      result.entries = verifier.entries() - 1;
      result.first_bad_line = line_number;
      result.what = "no newline at the end: the log was cut short or its last write was torn";
      return result;
    }
    pos = newline + 1;
  }
  result.ok = true;
  result.entries = verifier.entries();
  return result;
}

LogVerification VerifyLog(const std::string& path, const std::string& cert_pem,
                          const std::string& ca_pem) {
  const std::string content = ReadFile(path, "privacy log");
  LogVerification result;
  std::optional<AuditVerifyingKey> key;
  try {
    key = AuditVerifyingKey::FromCertificate(cert_pem, "audit certificate");
  } catch (const CryptoError& e) {
    result.what = e.what();
    return result;
  }
  if (!ca_pem.empty()) {
    // The chain is checked at a moment the certificate was valid: now, or its last second
    // (OpenSSL counts notAfter itself as expired).
    std::time_t at = std::time(nullptr);
    if (at >= key->not_after()) at = key->not_after() - 1;
    if (at < key->not_before()) at = key->not_before();
    const PeerCheck check =
        VerifyPeerCertificate(cert_pem, ca_pem, at, CertificatePurpose::kAuditLog);
    if (!check.ok) {
      result.what = check.reason;
      return result;
    }
  }
  return VerifyLogContent(content, PrivacyLogVerifier(*key, /*check_time=*/true));
}

std::vector<PrivacyLogEntry> ReadLog(const std::string& path) {
  const std::string content = ReadFile(path, "privacy log");
  std::vector<PrivacyLogEntry> entries;
  PrivacyLogVerifier verifier;
  size_t pos = 0;
  while (pos < content.size()) {
    const size_t newline = content.find('\n', pos);
    const int64_t line_number = verifier.entries() + 1;
    if (newline == std::string::npos) {
      throw FormatError(path + ": line " + std::to_string(line_number) +
                        ": no newline at the end: the log was cut short or its last write was "
                        "torn");
    }
    std::string what;
    PrivacyLogEntry entry;
    if (verifier.Next(std::string_view(content).substr(pos, newline - pos), &what, &entry) !=
        PrivacyLogVerifier::Failure::kNone) {
      throw FormatError(path + ": line " + std::to_string(line_number) + ": " + what);
    }
    entries.push_back(std::move(entry));
    pos = newline + 1;
  }
  return entries;
}

// ---- writing ----

PrivacyLogWriter::PrivacyLogWriter(std::string path, const std::string& key_pem,
                                   const std::string& cert_pem)
    : path_(std::move(path)),
      key_(AuditSigningKey::FromPem(key_pem, "audit key of privacy log '" + path_ + "'")),
      public_key_(AuditVerifyingKey::FromCertificate(
          cert_pem, "audit certificate of privacy log '" + path_ + "'")) {
  CheckKeyMatchesCertificate(key_pem, cert_pem,
                             "audit key and certificate of privacy log '" + path_ + "'");
  writer_ = public_key_.common_name();
  try {
    Open();
  } catch (...) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    throw;
  }
}

std::unique_ptr<PrivacyLogWriter> PrivacyLogWriter::OpenWithFiles(const std::string& path,
                                                                  const std::string& key_path,
                                                                  const std::string& cert_path) {
  return std::make_unique<PrivacyLogWriter>(path, ReadFile(key_path, "audit key"),
                                            ReadFile(cert_path, "audit certificate"));
}

PrivacyLogWriter::~PrivacyLogWriter() {
  if (fd_ >= 0) ::close(fd_);
}

int64_t PrivacyLogWriter::entries() const {
  std::lock_guard<std::mutex> lock(mu_);
  return next_seq_;
}

void PrivacyLogWriter::Open() {
  struct stat st {};
  const bool existed = ::stat(path_.c_str(), &st) == 0;
  fd_ = ::open(path_.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error(SystemError(path_, "cannot open"));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      throw Error("privacy log '" + path_ +
                  "' is in use by another writer (is another fedmed process using the same "
                  "output directory?)");
    }
    throw Error(SystemError(path_, "cannot lock"));
  }
  if (!existed) {
    // The new directory entry must survive a crash too.
    const std::string dir = std::filesystem::path(path_).parent_path().string();
    const int dir_fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd >= 0) {
      ::fsync(dir_fd);
      ::close(dir_fd);
    }
  }

  std::string content;
  char buf[65536];
  for (off_t offset = 0;;) {
    const ssize_t n = ::pread(fd_, buf, sizeof(buf), offset);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(SystemError(path_, "cannot read"));
    }
    content.append(buf, static_cast<size_t>(n));
    offset += n;
  }

  PrivacyLogVerifier verifier(public_key_, /*check_time=*/false);
  std::optional<RecoveredEvent> recovery;
  size_t pos = 0;
  while (pos < content.size()) {
    const size_t newline = content.find('\n', pos);
    std::string what;
    if (newline == std::string::npos) {
      // A torn tail: keep it if it is a whole valid entry missing only its newline.
      const std::string tail = content.substr(pos);
      PrivacyLogVerifier attempt = verifier;
      recovery.emplace();
      if (attempt.Next(tail, &what) == PrivacyLogVerifier::Failure::kNone) {
        verifier = attempt;
        recovery->completed_entry = true;
        recovery->last_seq = verifier.entries() - 1;
        recovery->reason =
            "the last entry had no newline (torn write); it was complete and is kept";
        pos = content.size();
        size_ = static_cast<int64_t>(content.size());
        WriteLine("\n");
      } else {
        recovery->dropped_bytes = static_cast<int64_t>(tail.size());
        recovery->dropped_sha256 = Sha256Hex(tail);
        recovery->last_seq = verifier.entries() - 1;
        recovery->reason = "the last line had no newline (torn write): " +
                           std::to_string(tail.size()) + " bytes cut away (" + what + ")";
      }
      break;
    }
    const PrivacyLogVerifier::Failure failure =
        verifier.Next(std::string_view(content).substr(pos, newline - pos), &what);
    if (failure == PrivacyLogVerifier::Failure::kNone) {
      pos = newline + 1;
      continue;
    }
    if (failure == PrivacyLogVerifier::Failure::kUnparseable && newline + 1 == content.size()) {
      recovery.emplace();
      const std::string torn = content.substr(pos);
      recovery->dropped_bytes = static_cast<int64_t>(torn.size());
      recovery->dropped_sha256 = Sha256Hex(torn);
      recovery->last_seq = verifier.entries() - 1;
      recovery->reason = "the last line was not a JSON entry (torn write): " +
                         std::to_string(torn.size()) + " bytes cut away (" + what + ")";
      break;
    }
    throw FormatError(path_ + ": line " + std::to_string(verifier.entries() + 1) + ": " + what +
                      "; refusing to append to a broken log (keep it as evidence, check it with "
                      "`fedmed-audit verify`, and start a new log file)");
  }
  next_seq_ = verifier.entries();
  prev_ = verifier.prev();
  if (recovery && !recovery->completed_entry) {
    if (::ftruncate(fd_, static_cast<off_t>(pos)) != 0 || ::fsync(fd_) != 0) {
      throw Error(SystemError(path_, "cannot cut away a torn last line"));
    }
    size_ = static_cast<int64_t>(pos);
  } else if (!recovery) {
    size_ = static_cast<int64_t>(content.size());
  }
  if (recovery) {
    recovery_ = recovery;
    Append(kEventRecovered, ToJson(*recovery));
  }
}

void PrivacyLogWriter::WriteLine(const std::string& line) {
  size_t written = 0;
  while (written < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + written, line.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      const std::string message = SystemError(path_, "cannot write");
      // Cut a partial line away so the log stays well formed; if even that fails, refuse more.
      if (::ftruncate(fd_, static_cast<off_t>(size_)) != 0) failed_ = true;
      throw Error(message);
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd_) != 0) {
    failed_ = true;  // after a failed fsync the file's content on disk is unknown
    throw Error(SystemError(path_, "cannot sync to disk"));
  }
  size_ += static_cast<int64_t>(line.size());
}

PrivacyLogEntry PrivacyLogWriter::Append(const std::string& event, const json& data) {
  if (event.empty()) throw Error("privacy log '" + path_ + "': an entry needs an event name");
  if (!data.is_object()) {
    throw Error("privacy log '" + path_ + "': the data of event \"" + event +
                "\" is not a JSON object");
  }
  CheckFinite(data, "data of event \"" + event + "\"");
  std::lock_guard<std::mutex> lock(mu_);
  if (failed_) {
    throw Error("privacy log '" + path_ +
                "': an earlier write failed and the file's state is unknown; restart to reopen "
                "(and repair) it");
  }
  json entry = json::object();
  entry["seq"] = next_seq_;
  entry["time"] = NowLogTime();
  entry["writer"] = writer_;
  entry["event"] = event;
  entry["data"] = data;
  entry["prev"] = prev_;
  std::string line;
  try {
    const std::string signature = key_.Sign(entry.dump());
    entry["sig"] = ToHex(signature.data(), signature.size());
    line = entry.dump();
  } catch (const json::exception& e) {
    throw Error("privacy log '" + path_ + "': the data of event \"" + event +
                "\" cannot be serialised (" + e.what() + ")");
  }
  WriteLine(line + "\n");
  PrivacyLogEntry out;
  out.line = next_seq_ + 1;
  out.seq = next_seq_;
  out.time = entry["time"].get<std::string>();
  out.writer = writer_;
  out.event = event;
  out.data = data;
  out.prev = prev_;
  out.sig = entry["sig"].get<std::string>();
  prev_ = Sha256Hex(line);
  out.hash = prev_;
  ++next_seq_;
  return out;
}

}  // namespace fedmed
