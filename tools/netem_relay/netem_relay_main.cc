// fedmed-netem-relay: a user-space netem between two TAP devices (tools/netem_relay/netem_relay.h;
// placed on every site's link by scripts/netns.sh, docs/NETWORK.md).
//
//   fedmed-netem-relay --a NETNS:TAP --b NETNS:TAP [--delay-ms D] [--loss P] [--seed S]
//                      [--pid-file PATH]
//
// Exit status: 0 after SIGINT/SIGTERM or when a TAP goes away, 2 for a bad command line or a TAP
// that cannot be attached (the message says which).
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "tools/netem_relay/netem_relay.h"

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  try {
    return fedmed::netem::RunRelay(fedmed::netem::ParseRelayArgs(args));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fedmed-netem-relay: %s\n", e.what());
    return 2;
  }
}
