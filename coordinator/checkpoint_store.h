// The checkpoint store: where a coordinator saves each round and where a restarted one resumes.
//
// Files, under the federation's output_dir:
//   checkpoints/round-NNNN.pt        the global model after round NNNN (a PyTorch state dict,
//                                    common/model/checkpoint.h)
//   checkpoints/round-NNNN.strategy  the strategy's server state after round NNNN
//                                    (Strategy::SaveState: FedOpt's moments; empty for
//                                    strategies that keep none)
//   global_model.pt                  the latest global model (the same state dict)
//   resume.json                      {"completed_round", "checkpoint", "model_sha256",
//                                     "strategy", "strategy_state", "strategy_state_sha256",
//                                     "excluded", "audit_round"}
// Every file is written with WriteFileAtomically (common/util/file_io.h: temp file, fsync,
// rename, fsync of the directory), and resume.json last: a crash at any instruction leaves
// resume.json naming a complete, consistent pair, and a failed write (a full disk) throws
// without replacing a good file.
#ifndef FEDMED_COORDINATOR_CHECKPOINT_STORE_H_
#define FEDMED_COORDINATOR_CHECKPOINT_STORE_H_

#include <optional>
#include <set>
#include <string>

#include "common/model/model_state.h"

namespace fedmed {

// What else a restarted coordinator must know of the federation so far, kept in resume.json.
struct FederationNotes {
  // Sites excluded from the federation ([federation] max_invalid_updates); they stay excluded.
  std::set<std::string> excluded;
  // The data of the completed round's audit entry (ToJson(RoundEvent), common/audit/
  // privacy_log.h), so that a crash between resume.json and the audit log's append loses no
  // entry: the restarted coordinator appends it when the audit log lacks it. "" = none.
  std::string audit_round;
  // The federation's rounds when an operator extended them (fedmed-admin extend); 0 = [federation]
  // rounds.
  int total_rounds = 0;
};

// What resume.json names, loaded and checked against its digests.
struct ResumePoint {
  int completed_round = 0;
  std::string checkpoint;       // relative to output_dir
  ModelState model;             // the global model after completed_round
  std::string strategy;         // the [strategy] name that wrote it
  // The strategy's server state; unset when resume.json predates strategy checkpoints.
  std::optional<std::string> strategy_state;
  std::string strategy_state_path;  // absolute, for messages
  FederationNotes notes;            // empty when resume.json predates them
};

class CheckpointStore {
 public:
  // `output_dir` must exist; checkpoints/ is created when missing.
  explicit CheckpointStore(std::string output_dir);

  // A round saved but not yet the resume point: Commit makes it one.
  struct Pending {
    std::string resume_json;
  };

  // Saves round `round`: the model, the strategy state and global_model.pt; resume.json still
  // names the round before until Commit (the caller records the round in between, so that a
  // crash repeats a round rather than losing its records). `model_sha256`: SHA-256 (hex) of
  // EncodeModelState(model), recorded for the resume check. Throws Error naming the file that
  // could not be written. `notes` are written into the pending resume.json.
  Pending Stage(int round, const ModelState& model, const std::string& model_sha256,
                const std::string& strategy, const std::string& strategy_state,
                const FederationNotes& notes = {}) const;
  // Replaces resume.json with `pending`'s. Throws Error naming resume.json.
  void Commit(const Pending& pending) const;
  // An operator's exclusion or extension between rounds (fedmed-admin): replaces the excluded
  // sites and total_rounds of the current resume.json (the checkpoint it names stays), so that a
  // restart keeps them. Returns false, writing nothing, when there is no resume.json yet (no
  // round completed). Throws Error naming resume.json when it cannot be read or written.
  bool UpdateNotes(const std::set<std::string>& excluded, int total_rounds) const;
  // Stage then Commit.
  void Save(int round, const ModelState& model, const std::string& model_sha256,
            const std::string& strategy, const std::string& strategy_state) const;

  // The resume point of output_dir, or nullopt when there is no resume.json. The checkpoint's
  // layout is checked against `layout` (the federation's model). Throws Error when resume.json
  // is malformed ("... is malformed: ..."), or a checkpoint or strategy state does not match
  // its digest; FormatError / DataError when the checkpoint cannot be read or has another
  // layout.
  std::optional<ResumePoint> Load(const ModelState& layout) const;

  const std::string& output_dir() const { return output_dir_; }

 private:
  std::string output_dir_;
};

}  // namespace fedmed

#endif  // FEDMED_COORDINATOR_CHECKPOINT_STORE_H_
