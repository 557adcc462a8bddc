#include "coordinator/checkpoint_store.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <utility>

#include "common/crypto/sha256.h"
#include "common/model/checkpoint.h"
#include "common/util/error.h"
#include "common/util/file_io.h"

namespace fedmed {

namespace fs = std::filesystem;

CheckpointStore::CheckpointStore(std::string output_dir) : output_dir_(std::move(output_dir)) {
  fs::create_directories(fs::path(output_dir_) / "checkpoints");
}

void CheckpointStore::Save(int round, const ModelState& model, const std::string& model_sha256,
                           const std::string& strategy, const std::string& strategy_state) const {
  Commit(Stage(round, model, model_sha256, strategy, strategy_state));
}

void CheckpointStore::Commit(const Pending& pending) const {
  WriteFileAtomically((fs::path(output_dir_) / "resume.json").string(), pending.resume_json,
                      "resume.json");
}

bool CheckpointStore::UpdateNotes(const std::set<std::string>& excluded,
                                  int total_rounds) const {
  const fs::path path = fs::path(output_dir_) / "resume.json";
  if (!fs::exists(path)) return false;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(ReadFile(path.string(), "resume.json"));
  } catch (const nlohmann::json::exception& e) {
    throw Error(path.string() + " is malformed: " + e.what());
  }
  j["excluded"] = excluded;
  if (total_rounds > 0) j["total_rounds"] = total_rounds;
  WriteFileAtomically(path.string(), j.dump(2) + "\n", "resume.json");
  return true;
}

CheckpointStore::Pending CheckpointStore::Stage(int round, const ModelState& model,
                                                const std::string& model_sha256,
                                                const std::string& strategy,
                                                const std::string& strategy_state,
                                                const FederationNotes& notes) const {
  char name[32];
  std::snprintf(name, sizeof(name), "round-%04d", round);
  const std::string relative = std::string("checkpoints/") + name + ".pt";
  const std::string state_relative = std::string("checkpoints/") + name + ".strategy";
  const fs::path dir(output_dir_);
  SaveCheckpoint(model, (dir / relative).string());
  SaveCheckpoint(model, (dir / "global_model.pt").string());
  WriteFileAtomically((dir / state_relative).string(), strategy_state, "strategy state");
  nlohmann::json j;
  j["completed_round"] = round;
  j["checkpoint"] = relative;
  j["model_sha256"] = model_sha256;
  j["strategy"] = strategy;
  j["strategy_state"] = state_relative;
  j["strategy_state_sha256"] = Sha256Hex(strategy_state);
  j["excluded"] = notes.excluded;
  if (!notes.audit_round.empty()) j["audit_round"] = nlohmann::json::parse(notes.audit_round);
  if (notes.total_rounds > 0) j["total_rounds"] = notes.total_rounds;
  return Pending{j.dump(2) + "\n"};
}

std::optional<ResumePoint> CheckpointStore::Load(const ModelState& layout) const {
  const fs::path path = fs::path(output_dir_) / "resume.json";
  if (!fs::exists(path)) return std::nullopt;
  ResumePoint point;
  try {
    const nlohmann::json j = nlohmann::json::parse(ReadFile(path.string(), "resume.json"));
    point.completed_round = j.at("completed_round").get<int>();
    if (point.completed_round < 1) {
      throw Error(path.string() + " is malformed: completed_round " +
                  std::to_string(point.completed_round) + " (expected >= 1)");
    }
    point.checkpoint = j.at("checkpoint").get<std::string>();
    point.model = LoadCheckpoint((fs::path(output_dir_) / point.checkpoint).string());
    CheckSameLayout(layout, point.model, "checkpoint " + point.checkpoint);
    if (Sha256Hex(EncodeModelState(point.model)) != j.at("model_sha256").get<std::string>()) {
      throw Error("checkpoint " + point.checkpoint + " does not match the digest in resume.json");
    }
    if (j.contains("excluded")) {
      point.notes.excluded = j.at("excluded").get<std::set<std::string>>();
    }
    if (j.contains("audit_round")) point.notes.audit_round = j.at("audit_round").dump();
    if (j.contains("total_rounds")) point.notes.total_rounds = j.at("total_rounds").get<int>();
    if (!j.contains("strategy_state")) return point;  // written before strategy checkpoints
    point.strategy = j.at("strategy").get<std::string>();
    const std::string relative = j.at("strategy_state").get<std::string>();
    point.strategy_state_path = (fs::path(output_dir_) / relative).string();
    std::string bytes = ReadFile(point.strategy_state_path, "strategy state named in resume.json");
    if (Sha256Hex(bytes) != j.at("strategy_state_sha256").get<std::string>()) {
      throw Error("strategy state " + point.strategy_state_path +
                  " does not match the digest in resume.json");
    }
    point.strategy_state = std::move(bytes);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path.string() + " is malformed: " + e.what());
  }
  return point;
}

}  // namespace fedmed
