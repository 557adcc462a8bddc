// Reading and showing what a running federation writes into its run directory: the
// coordinator's metrics.jsonl (one JSON object per finished round) and status.json (replaced
// atomically while it runs), the ends of log files, and the tables fedmed-simulate prints at the
// end of a run (global metrics per round, each site's privacy spend).
//
// The readers tolerate files that are still being written (a line or document that does not
// parse is treated as not there yet) and never throw. The printers expect rows as the coordinator
// writes them (nlohmann::json::exception for a row without a numeric "round").
#ifndef FEDMED_SIMULATOR_RUN_OUTPUT_H_
#define FEDMED_SIMULATOR_RUN_OUTPUT_H_

#include <cstddef>
#include <filesystem>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace fedmed {

// Reads a JSON-lines file (metrics.jsonl), stopping at the first line that does not parse (one
// still being written). A missing file gives no rows.
std::vector<nlohmann::json> ReadJsonLines(const std::string& path);

// `v` with `precision` decimals, or "-" when it is not a number.
std::string FormatNumber(const nlohmann::json& v, int precision = 4);

// The JSON document at `path` (status.json), or nullopt when the file is missing or does not
// parse (it is being replaced right now; read it next time).
std::optional<nlohmann::json> ReadJsonFile(const std::filesystem::path& path);

// The last `lines` lines of the text file at `path` (a log), each indented by four spaces and
// ending in '\n'; "" when the file is missing.
std::string LogTail(const std::filesystem::path& path, std::size_t lines);

// Prints the table of metrics.jsonl `rows`: per round its wall-clock seconds, the global model's
// ACC, AUC, balanced ACC, F1, sensitivity and specificity on the held-out set, and the
// federated ACC and AUC (the sites' local test splits, combined); "-" where a value is missing.
void PrintRoundTable(const std::vector<nlohmann::json>& rows, std::ostream& out);

// Prints each site's privacy spend as the coordinator last heard it (the "privacy" object of the
// last row: mechanism, epsilon spent of the budget at delta; the sites' own ledgers and logs are
// authoritative). Prints nothing when no site uses a privacy mechanism.
void PrintPrivacySpent(const std::vector<nlohmann::json>& rows, std::ostream& out);

// The parts of the rounds' critical paths (metrics.jsonl seconds.critical_path, defined in
// coordinator/metrics_log.h) summed over `rows`, in seconds: {"seconds", "training", "queued",
// "transfers", "waiting", "coordinator", "evaluation", "overhead"}; zeros for no rows, and
// rows without a critical path (written before it existed) count nothing.
nlohmann::json SumCriticalPaths(const std::vector<nlohmann::json>& rows);

// One paragraph: where the rounds' time went (SumCriticalPaths) and, of `wall_seconds` (the
// whole run), how much came before the first round and after the last (start-up: certificates,
// processes, registration; the end: the final model's export, the processes' exit).
void PrintTimeBreakdown(const nlohmann::json& sums, double wall_seconds, std::ostream& out);

}  // namespace fedmed

#endif  // FEDMED_SIMULATOR_RUN_OUTPUT_H_
