// The link emulator of the multi-host test bed (scripts/netns.sh, docs/NETWORK.md): what the
// kernel's netem would do, in user space, because the project's machines run kernels without
// CONFIG_NET_SCH_NETEM.
//
// A relay joins two TAP devices (each possibly in another network namespace) as the two ends of
// one Ethernet link: every frame read from one end is written to the other after a fixed delay,
// unless it is dropped. Each direction keeps its own FIFO, so frames are never reordered (a
// constant delay cannot reorder them). Loss is Bernoulli per frame, drawn from a seeded
// std::mt19937_64, one generator per direction (seed and seed + 1), so a run is reproducible as
// far as the frames offered are. While the link is cut (SIGUSR1; SIGUSR2 restores it) every frame
// is dropped in both directions, as if the cable were pulled; frames already in flight are still
// delivered. The rate is not the relay's business: scripts/netns.sh shapes each TAP's egress with
// tbf, so a frame is first serialised at the link rate, then delayed, as on a real link.
//
// Everything here but RunRelay is pure (no system calls), for the unit test.
#ifndef FEDMED_TOOLS_NETEM_RELAY_NETEM_RELAY_H_
#define FEDMED_TOOLS_NETEM_RELAY_NETEM_RELAY_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <random>
#include <string>
#include <vector>

namespace fedmed::netem {

using Clock = std::chrono::steady_clock;

// One direction of the link.
struct LinkSettings {
  std::chrono::microseconds delay{0};  // one-way delay added to every frame, >= 0
  double loss = 0;                     // probability of dropping a frame, in [0, 1]
  uint64_t seed = 1;                   // seed of the loss generator
  // Frames in flight beyond this are dropped (tail drop). A frame is at most the MTU plus its
  // header (TAPs without IFF_VNET_HDR get no GSO super-frames), so this bounds the relay's
  // memory at about 30 MB a direction; 1 Gbit/s for 100 ms is about 8300 full frames.
  size_t max_queued_frames = 20000;
};

// What happened to the frames of one direction so far.
struct LinkCounters {
  uint64_t frames_in = 0;
  uint64_t frames_out = 0;
  uint64_t dropped_loss = 0;   // drawn by the loss generator
  uint64_t dropped_cut = 0;    // arrived while the link was cut
  uint64_t dropped_queue = 0;  // arrived with max_queued_frames in flight
  uint64_t bytes_out = 0;
};

// The delay line of one direction: Offer() a frame when it is read, Due() the frames whose time
// has come. Pure: time is passed in.
class DelayLine {
 public:
  // Throws std::invalid_argument for a negative delay or a loss outside [0, 1].
  explicit DelayLine(const LinkSettings& settings);

  // A frame read at `now`. Returns false when it is dropped (cut, loss or a full queue).
  bool Offer(std::vector<uint8_t> frame, Clock::time_point now, bool cut);
  // Whether a frame is due at `now`.
  bool HasDue(Clock::time_point now) const;
  // The oldest frame, which must be due (HasDue); counted as sent.
  std::vector<uint8_t> PopDue();
  // When the next frame falls due; Clock::time_point::max() when none is queued.
  Clock::time_point NextDue() const;
  size_t queued() const { return queue_.size(); }
  const LinkCounters& counters() const { return counters_; }

 private:
  struct Entry {
    Clock::time_point due;
    std::vector<uint8_t> frame;
  };
  LinkSettings settings_;
  std::mt19937_64 rng_;
  std::bernoulli_distribution drop_;
  std::deque<Entry> queue_;
  LinkCounters counters_;
};

// A TAP device to attach to: the persistent TAP `device` (created with `ip tuntap add ... mode
// tap`) in the network namespace at `netns_path` (/run/netns/<name>; "" = the relay's own).
struct TapEnd {
  std::string netns_path;
  std::string device;
};

// The relay's command line, parsed (ParseRelayArgs).
struct RelayOptions {
  TapEnd a;
  TapEnd b;
  LinkSettings a_to_b;
  LinkSettings b_to_a;
  std::string pid_file;  // written once both ends are attached ("" = none)
};

// Parses `fedmed-netem-relay --a NETNS:DEV --b NETNS:DEV [--delay-ms D] [--loss P] [--seed S]
// [--pid-file PATH]` (NETNS may be empty: "":DEV is the relay's own namespace; NETNS without a
// '/' is looked up as /run/netns/NETNS). The delay and loss apply to both directions. Throws
// std::invalid_argument naming the flag and what was expected.
RelayOptions ParseRelayArgs(const std::vector<std::string>& args);

// Attaches to both TAPs, then relays until SIGINT or SIGTERM, or until a TAP goes away (the test
// bed torn down). SIGUSR1 cuts the link, SIGUSR2 restores it, SIGHUP logs the counters to stderr.
// Returns the process exit status (0 after a signal or a vanished TAP). Throws std::runtime_error
// naming the namespace and device when a TAP cannot be attached.
int RunRelay(const RelayOptions& options);

}  // namespace fedmed::netem

#endif  // FEDMED_TOOLS_NETEM_RELAY_NETEM_RELAY_H_
