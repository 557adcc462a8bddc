// fedmed-admin: the operator's command line for a running coordinator (the Admin service of
// proto/fedmed.proto, over mutual TLS with the operator certificate from fedmed-pki init):
//
//   fedmed-admin [--dir DIR] [--coordinator host:port] [--timeout S] status [--json]
//   fedmed-admin ... pause | resume | stop
//   fedmed-admin ... exclude SITE --reason TEXT
//   fedmed-admin ... extend --rounds N
//
// DIR (default ".") holds ca.pem, operator.pem, operator.key and coordinator_address, as
// fedmed-pki init writes DIR/operator/. Prints the coordinator's answer (status: a table, or the
// /api/status JSON with --json). Exit status 0 on success; 1 when the coordinator refused the
// action or could not be reached (the reason on stderr, with the gRPC status code name); 2 for
// command-line mistakes.
#include <CLI/CLI.hpp>

#include <iostream>
#include <string>

#include "common/util/error.h"
#include "tools/admin/admin_client.h"
#include "tools/admin/admin_table.h"

namespace fedmed {
namespace {

const char* CodeName(int code) {
  switch (code) {
    case 1: return "CANCELLED";
    case 3: return "INVALID_ARGUMENT";
    case 4: return "DEADLINE_EXCEEDED";
    case 5: return "NOT_FOUND";
    case 7: return "PERMISSION_DENIED";
    case 9: return "FAILED_PRECONDITION";
    case 12: return "UNIMPLEMENTED";
    case 14: return "UNAVAILABLE";
    case 16: return "UNAUTHENTICATED";
    default: return "ERROR";
  }
}

int Main(int argc, char** argv) {
  CLI::App app{"fedmed-admin: pause, resume, stop, exclude a site from or extend a running "
               "federation, and show its status (an operator certificate from fedmed-pki init)"};
  app.require_subcommand(1);
  std::string dir = ".";
  std::string address;
  double timeout = 10;
  app.add_option("--dir", dir,
                 "Directory with ca.pem, operator.pem, operator.key, coordinator_address "
                 "(fedmed-pki init's DIR/operator)")
      ->capture_default_str();
  app.add_option("--coordinator", address,
                 "host:port of the coordinator (default: DIR/coordinator_address)");
  app.add_option("--timeout", timeout, "Seconds to wait for the coordinator's answer")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);

  bool json = false;
  CLI::App* status = app.add_subcommand("status", "The federation's state as a table");
  status->add_flag("--json", json, "Print the /api/status JSON document instead");
  CLI::App* pause = app.add_subcommand("pause", "Start no new round after the current one");
  CLI::App* resume = app.add_subcommand("resume", "Lift a pause: the next round starts");
  CLI::App* stop = app.add_subcommand(
      "stop", "Stop the coordinator (exit 0; resume.json keeps the last completed round)");
  std::string site, reason;
  CLI::App* exclude = app.add_subcommand("exclude", "Leave a site out of every later round");
  exclude->add_option("site", site, "The site's name (its certificate CN)")->required();
  exclude->add_option("--reason", reason, "Why (recorded in the coordinator's audit log)")
      ->required();
  int rounds = 0;
  CLI::App* extend = app.add_subcommand("extend", "Add rounds to the federation");
  extend->add_option("--rounds", rounds, "How many rounds to add")
      ->required()
      ->check(CLI::Range(1, 10000));

  CLI11_PARSE(app, argc, argv);
  try {
    AdminClient client(AdminTargetFromDir(dir, address), timeout);
    if (*status) {
      const std::string doc = client.StatusJson();
      std::cout << (json ? doc + "\n" : FormatStatusTable(doc));
    } else if (*pause) {
      std::cout << client.Pause() << "\n";
    } else if (*resume) {
      std::cout << client.Resume() << "\n";
    } else if (*stop) {
      std::cout << client.Stop() << "\n";
    } else if (*exclude) {
      std::cout << client.Exclude(site, reason) << "\n";
    } else if (*extend) {
      std::cout << client.Extend(rounds) << "\n";
    }
  } catch (const AdminError& e) {
    std::cerr << "fedmed-admin: " << CodeName(e.code()) << ": " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "fedmed-admin: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace fedmed

int main(int argc, char** argv) { return fedmed::Main(argc, argv); }
