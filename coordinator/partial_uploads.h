// Resumable uploads: what the coordinator keeps of an update upload that ended part-way (the
// site's link went down, its process was restarted, the stream stalled), so that the site,
// once it reconnects, sends only the rest (docs/PROTOCOL.md, "Resumable transfers").
//
// An upload is identified by (site, round, SHA-256 and size of the whole update, as its header
// declared them): a site resuming a different update, or the same one for another round, starts
// from zero. The bytes kept are whole chunks as received, in order; the digest of the whole is
// checked when the resumed upload completes (common/transport/chunking.h), so a kept prefix that
// does not belong to the update fails that check and is never aggregated.
//
// Bounded: at most one partial upload per site (a newer one replaces it), each at most the
// update's declared size (which the coordinator checked against the model's), and dropped
// `max_age` after it was kept. No gRPC; thread-safe.
#ifndef FEDMED_COORDINATOR_PARTIAL_UPLOADS_H_
#define FEDMED_COORDINATOR_PARTIAL_UPLOADS_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "common/util/mutex.h"

namespace fedmed {

class PartialUploads {
 public:
  using Clock = std::chrono::steady_clock;

  // Which upload a partial belongs to.
  struct Key {
    int round = 0;
    std::string sha256;  // of the whole update, as declared
    int64_t size = 0;    // of the whole update, as declared
    bool operator==(const Key& o) const {
      return round == o.round && sha256 == o.sha256 && size == o.size;
    }
  };

  explicit PartialUploads(Clock::duration max_age) : max_age_(max_age) {}

  // Keeps the first bytes.size() bytes of `site`'s upload `key` (replacing what the site had
  // kept before). Nothing is kept for an empty prefix or one that is not shorter than
  // key.size (a complete upload is not partial).
  void Keep(const std::string& site, const Key& key, std::string bytes, Clock::time_point now);
  // How many bytes of `site`'s upload `key` are kept (0 when none, or for another key).
  int64_t Offset(const std::string& site, const Key& key, Clock::time_point now);
  // Takes the kept bytes of `site`'s upload `key` out (nullopt when none, or another key's are
  // kept: those are dropped too, since the site has moved on).
  std::optional<std::string> Take(const std::string& site, const Key& key, Clock::time_point now);
  // Drops everything kept for `site`.
  void Forget(const std::string& site);
  // Bytes kept over all sites.
  int64_t bytes() const;

 private:
  struct Entry {
    Key key;
    std::string bytes;
    Clock::time_point kept;
  };
  void ExpireLocked(Clock::time_point now) REQUIRES(mu_);

  const Clock::duration max_age_;
  mutable Mutex mu_;
  std::map<std::string, Entry> by_site_ GUARDED_BY(mu_);
};

}  // namespace fedmed

#endif  // FEDMED_COORDINATOR_PARTIAL_UPLOADS_H_
