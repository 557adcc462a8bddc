#include "coordinator/partial_uploads.h"

namespace fedmed {

void PartialUploads::ExpireLocked(Clock::time_point now) {
  for (auto it = by_site_.begin(); it != by_site_.end();) {
    it = now - it->second.kept > max_age_ ? by_site_.erase(it) : std::next(it);
  }
}

void PartialUploads::Keep(const std::string& site, const Key& key, std::string bytes,
                          Clock::time_point now) {
  MutexLock lock(&mu_);
  ExpireLocked(now);
  if (bytes.empty() || static_cast<int64_t>(bytes.size()) >= key.size) {
    by_site_.erase(site);
    return;
  }
  by_site_[site] = Entry{key, std::move(bytes), now};
}

int64_t PartialUploads::Offset(const std::string& site, const Key& key, Clock::time_point now) {
  MutexLock lock(&mu_);
  ExpireLocked(now);
  const auto it = by_site_.find(site);
  if (it == by_site_.end() || !(it->second.key == key)) return 0;
  return static_cast<int64_t>(it->second.bytes.size());
}

std::optional<std::string> PartialUploads::Take(const std::string& site, const Key& key,
                                                Clock::time_point now) {
  MutexLock lock(&mu_);
  ExpireLocked(now);
  const auto it = by_site_.find(site);
  if (it == by_site_.end()) return std::nullopt;
  std::optional<std::string> out;
  if (it->second.key == key) out = std::move(it->second.bytes);
  by_site_.erase(it);
  return out;
}

void PartialUploads::Forget(const std::string& site) {
  MutexLock lock(&mu_);
  by_site_.erase(site);
}

int64_t PartialUploads::bytes() const {
  MutexLock lock(&mu_);
  int64_t total = 0;
  for (const auto& [site, entry] : by_site_) total += static_cast<int64_t>(entry.bytes.size());
  return total;
}

}  // namespace fedmed
