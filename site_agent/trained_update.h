// A site's trained update between training and the coordinator's acceptance: how it is encoded
// (the task's update encoding, [transport] update_encoding at the coordinator:
// common/model/quantization.h) and what the site keeps of it so that an upload cut part-way
// (a coordinator restart, a link down) is sent again, or resumed, instead of retrained.
// No gRPC, no LibTorch.
#ifndef FEDMED_SITE_AGENT_TRAINED_UPDATE_H_
#define FEDMED_SITE_AGENT_TRAINED_UPDATE_H_

#include <cstdint>
#include <deque>
#include <string>

#include "common/model/model_state.h"
#include "common/transport/messages.h"

namespace fedmed {

// The last plain update a site sent or tried to send: the round, the global model it is
// relative to (SHA-256), what was sent. A coordinator restarted from its checkpoint, or one
// that kept the site's place in the round while its link was down, asks again for a round
// this site already trained on the same model; the site then sends the same bytes with the
// same privacy-log entry (resuming an upload the coordinator holds part of) instead of
// training, and spending, again.
struct KeptUpdate {
  int round = 0;
  std::string model_sha256;
  UpdateInfo info;
  std::string bytes;
};

// The last few plain updates a site sent or tried, oldest first. A coordinator records a round
// while the next one already runs, so a crash in between asks again for the round before the
// site's last: a site of its own keeps 2. Not thread-safe (the site's loop owns it).
class KeptUpdates {
 public:
  // `capacity` >= 1 (a smaller value counts as 1).
  explicit KeptUpdates(int capacity) : capacity_(capacity < 1 ? 1 : capacity) {}
  // The update kept for `round` on the global model `model_sha256`, or null.
  const KeptUpdate* Find(int round, const std::string& model_sha256) const;
  // Keeps `update` (replacing one of the same round), forgetting the oldest beyond capacity.
  void Keep(KeptUpdate update);

 private:
  size_t capacity_;
  std::deque<KeptUpdate> kept_;
};

// "" when this site can encode its update as `task` asks (task.update_encoding "", "float32",
// "float16" or "int8"); otherwise why not, for the decline.
std::string UpdateEncodingProblem(const SiteTask& task);

// The bytes of a plain update `delta` in the task's encoding (EncodeModelState; "" = float32);
// `seed` seeds int8's stochastic rounding (the round's training seed: reproducible). Throws
// FormatError when the encoding cannot hold a value (float16 above 65504) or
// UpdateEncodingProblem(task) is not "".
std::string EncodePlainUpdate(const SiteTask& task, const ModelState& delta, uint64_t seed);

}  // namespace fedmed

#endif  // FEDMED_SITE_AGENT_TRAINED_UPDATE_H_
