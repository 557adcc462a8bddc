// The privacy log's event structs as the JSON object of an entry's "data" (privacy_log.h):
// ToJson for every event, and the readers the verifier and the auditor use, which check every
// member's presence and JSON type and name the entry and member they refuse.
#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "common/audit/privacy_log.h"
#include "common/util/error.h"

namespace fedmed {

using json = nlohmann::json;

namespace {

// ---- typed access to event data ----

const json& Member(const json& data, const char* key, const std::string& what) {
  if (!data.is_object()) throw FormatError(what + ": data is not a JSON object");
  const auto it = data.find(key);
  if (it == data.end()) throw FormatError(what + ": data has no \"" + key + "\"");
  return *it;
}

double GetNumber(const json& data, const char* key, const std::string& what) {
  const json& v = Member(data, key, what);
  if (!v.is_number()) throw FormatError(what + ": data." + key + " is not a number");
  return v.get<double>();
}

int64_t GetInteger(const json& data, const char* key, const std::string& what) {
  const json& v = Member(data, key, what);
  if (!v.is_number_integer()) throw FormatError(what + ": data." + key + " is not an integer");
  return v.get<int64_t>();
}

int GetInt(const json& data, const char* key, const std::string& what) {
  const int64_t v = GetInteger(data, key, what);
  if (v < INT32_MIN || v > INT32_MAX) {
    throw FormatError(what + ": data." + key + " is out of range");
  }
  return static_cast<int>(v);
}

std::string GetString(const json& data, const char* key, const std::string& what) {
  const json& v = Member(data, key, what);
  if (!v.is_string()) throw FormatError(what + ": data." + key + " is not a string");
  return v.get<std::string>();
}

std::vector<std::string> GetStrings(const json& data, const char* key, const std::string& what) {
  const json& v = Member(data, key, what);
  std::vector<std::string> out;
  if (!v.is_array()) throw FormatError(what + ": data." + key + " is not an array");
  for (const json& item : v) {
    if (!item.is_string()) throw FormatError(what + ": data." + key + " holds a non-string");
    out.push_back(item.get<std::string>());
  }
  return out;
}

}  // namespace

// ---- event data ----
//
// Each event's plain members are listed once, in a field table (name in "data", member); ToJson
// and the readers below walk it. RoundEvent's maps are written and read by hand after its table.

namespace {

template <typename Event, typename T>
struct Field {
  const char* name;
  T Event::*member;
};

template <typename Event, typename T>
constexpr Field<Event, T> F(const char* name, T Event::*member) {
  return {name, member};
}

void Read(const json& d, const char* key, const std::string& what, int* out) {
  *out = GetInt(d, key, what);
}
void Read(const json& d, const char* key, const std::string& what, int64_t* out) {
  *out = GetInteger(d, key, what);
}
void Read(const json& d, const char* key, const std::string& what, double* out) {
  *out = GetNumber(d, key, what);
}
void Read(const json& d, const char* key, const std::string& what, std::string* out) {
  *out = GetString(d, key, what);
}
void Read(const json& d, const char* key, const std::string& what, std::vector<std::string>* out) {
  *out = GetStrings(d, key, what);
}
void Read(const json& d, const char* key, const std::string& what, PrivacyMode* out) {
  const std::string name = GetString(d, key, what);
  const std::optional<PrivacyMode> mode = ParsePrivacyMode(name);
  if (!mode) {
    throw FormatError(what + ": data." + key + " \"" + name.substr(0, 64) +
                      "\" is not a privacy mechanism (\"none\", \"dp-sgd\" or \"update\")");
  }
  *out = *mode;
}

// A member's value in "data": as it is, or (an enum) by its name.
template <typename T>
const T& JsonValue(const T& value) {
  return value;
}
const char* JsonValue(PrivacyMode mode) { return PrivacyModeName(mode); }

template <typename Event, typename Fields>
json FieldsToJson(const Event& e, const Fields& fields) {
  json j = json::object();
  std::apply([&](const auto&... f) { ((j[f.name] = JsonValue(e.*(f.member))), ...); }, fields);
  return j;
}

template <typename Event, typename Fields>
Event FieldsFromJson(const json& data, const Fields& fields, const std::string& what) {
  Event e;
  std::apply([&](const auto&... f) { (Read(data, f.name, what, &(e.*(f.member))), ...); }, fields);
  return e;
}

using T = TrainedEvent;
const auto kTrainedFields = std::make_tuple(
    F("round", &T::round), F("mechanism", &T::mechanism), F("clipping_norm", &T::clipping_norm),
    F("noise_multiplier", &T::noise_multiplier), F("sampling_rate", &T::sampling_rate),
    F("steps", &T::steps), F("delta", &T::delta), F("conversion", &T::conversion),
    F("epsilon_round", &T::epsilon_round), F("epsilon_total", &T::epsilon_total),
    F("budget_epsilon", &T::budget_epsilon), F("update_sha256", &T::update_sha256));

using D = DeclinedEvent;
const auto kDeclinedFields = std::make_tuple(
    F("round", &D::round), F("reason", &D::reason), F("epsilon_round", &D::epsilon_round),
    F("epsilon_total", &D::epsilon_total), F("budget_epsilon", &D::budget_epsilon),
    F("delta", &D::delta));

using B = BudgetEvent;
const auto kBudgetFields = std::make_tuple(
    F("budget_epsilon", &B::budget_epsilon),
    F("previous_budget_epsilon", &B::previous_budget_epsilon), F("delta", &B::delta),
    F("epsilon_spent", &B::epsilon_spent));

using R = RecoveredEvent;
const auto kRecoveredFields = std::make_tuple(
    F("dropped_bytes", &R::dropped_bytes), F("dropped_sha256", &R::dropped_sha256),
    F("completed_entry", &R::completed_entry), F("last_seq", &R::last_seq),
    F("reason", &R::reason));

const auto kRoundFields = std::make_tuple(
    F("round", &RoundEvent::round), F("selected", &RoundEvent::selected),
    F("contributors", &RoundEvent::contributors),
    F("aggregate_sha256", &RoundEvent::aggregate_sha256));

}  // namespace

json ToJson(const TrainedEvent& e) { return FieldsToJson(e, kTrainedFields); }
json ToJson(const DeclinedEvent& e) { return FieldsToJson(e, kDeclinedFields); }
json ToJson(const BudgetEvent& e) { return FieldsToJson(e, kBudgetFields); }
json ToJson(const RecoveredEvent& e) { return FieldsToJson(e, kRecoveredFields); }

json ToJson(const RoundEvent& e) {
  json j = FieldsToJson(e, kRoundFields);
  j["received"] = e.received;
  j["metrics"] = e.metrics;
  if (!e.log_heads.empty()) {
    json heads = json::object();
    for (const auto& [site, anchor] : e.log_heads) {
      heads[site] = json{{"seq", anchor.seq}, {"sha256", anchor.sha256}};
    }
    j["log_heads"] = heads;
  }
  return j;
}

TrainedEvent TrainedEventFromJson(const json& data, const std::string& what) {
  return FieldsFromJson<TrainedEvent>(data, kTrainedFields, what);
}

DeclinedEvent DeclinedEventFromJson(const json& data, const std::string& what) {
  return FieldsFromJson<DeclinedEvent>(data, kDeclinedFields, what);
}

RoundEvent RoundEventFromJson(const json& data, const std::string& what) {
  RoundEvent e = FieldsFromJson<RoundEvent>(data, kRoundFields, what);
  const json& received = Member(data, "received", what);
  if (!received.is_object()) throw FormatError(what + ": data.received is not an object");
  for (auto it = received.begin(); it != received.end(); ++it) {
    if (!it->is_string()) {
      throw FormatError(what + ": data.received." + it.key() + " is not a string");
    }
    e.received[it.key()] = it->get<std::string>();
  }
  const json& metrics = Member(data, "metrics", what);
  if (!metrics.is_object()) throw FormatError(what + ": data.metrics is not an object");
  for (auto it = metrics.begin(); it != metrics.end(); ++it) {
    if (it->is_number()) e.metrics[it.key()] = it->get<double>();
  }
  const auto heads = data.find("log_heads");
  if (heads != data.end()) {
    if (!heads->is_object()) throw FormatError(what + ": data.log_heads is not an object");
    for (auto it = heads->begin(); it != heads->end(); ++it) {
      const std::string where = what + ": data.log_heads." + it.key();
      LogAnchor anchor;
      anchor.seq = GetInteger(*it, "seq", where);
      anchor.sha256 = GetString(*it, "sha256", where);
      e.log_heads[it.key()] = anchor;
    }
  }
  return e;
}

}  // namespace fedmed
