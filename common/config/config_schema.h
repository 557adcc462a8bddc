// Configuration sections declared once, as key tables.
//
// Each key of a TOML section is one row, a ConfigKey<S>: the key's name, the field of S it fills,
// the comment written above it in a rendered file, and the check its value must pass. A
// ConfigSection<S> is the section's name, its rows in file order, and the few rules that span
// keys. Reading (ReadSection), validation (ValidateSection), rendering (RenderSection) and
// equality (SectionEqual) of a section, and of a whole file (the *Sections functions), follow
// from the rows, so adding a key is adding one row.
//
//   using K = ConfigKey<TrainingConfig>;
//   const ConfigSection<TrainingConfig> training = {
//       "training", "", {
//           K("local_epochs", &TrainingConfig::local_epochs, "Local epochs per round.",
//             IntAtLeast(1)),
//           K("optimizer", &TrainingConfig::optimizer, "\"sgd\" or \"adam\".",
//             OneOf({"sgd", "adam"})),
//       }};
//
// Defaults are the struct's default member initialisers, written once: reading starts from the
// struct it is given and overwrites only the keys the file sets. Presence is looked up once in
// the parsed file (TomlFile::Read returns it), so optional values (std::optional<double>) are
// read without sentinels.
//
// Field types: std::string, bool, int, int64_t, uint64_t, double, std::vector<std::string>,
// std::optional<double> (unset when absent, rendered as a comment), std::array<double, 3> (1 or 3
// numbers; one number is used for every channel), and a double for which 0 means "not set"
// (UnsetWhenZero). A row can name a field of a member (Member(&S::tls, &TlsFiles::cert)), and a
// table of a member struct can be lifted into the enclosing struct (Lift, ConfigSection::In).
//
// Errors are ConfigErrors worded as in toml_util.h:
//   <file>: [section] key: expected <what>, got <value>
// toml++ stays out of this header (TomlFile hides it).
#ifndef FEDMED_COMMON_CONFIG_CONFIG_SCHEMA_H_
#define FEDMED_COMMON_CONFIG_CONFIG_SCHEMA_H_

#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "common/config/config_values.h"
#include "common/config/toml_util.h"
#include "common/util/error.h"

namespace fedmed {

// ---- rows ----

// One key of a section of S: name, field, comment, check, and how it is read and rendered.
template <typename S>
class ConfigKey {
 public:
  // A check of the key's value; it also sees the whole struct (for rules that depend on other
  // keys, which should accept the value when that other key is itself invalid, so that the
  // message names the key at fault). An empty check accepts every value.
  template <typename T>
  using Check = std::function<Verdict(const T& value, const S& config)>;

  // The key `key`, stored in `field`; `comment` is written above it when rendered (lines
  // separated by '\n', without "# "; "" = none).
  template <typename T>
  ConfigKey(std::string key, T S::*field, std::string comment,
            typename config_internal::Identity<Check<T>>::type check = nullptr)
      : key_(std::move(key)),
        comment_(std::move(comment)),
        field_(std::make_shared<config_internal::MemberField<
                   S, T, config_internal::Value<T>, config_internal::DirectAccess<S, T>>>(
            config_internal::DirectAccess<S, T>{field}, std::move(check))) {}

  // The key stored in a field of a member of S (Member(&S::member, &M::field)).
  template <typename M, typename T>
  ConfigKey(std::string key, MemberPath<S, M, T> path, std::string comment,
            typename config_internal::Identity<Check<T>>::type check = nullptr)
      : key_(std::move(key)),
        comment_(std::move(comment)),
        field_(std::make_shared<config_internal::MemberField<
                   S, T, config_internal::Value<T>, config_internal::PathAccess<S, M, T>>>(
            config_internal::PathAccess<S, M, T>{path}, std::move(check))) {}

  // A double for which 0 means "not set" (UnsetWhenZero(&S::field)).
  ConfigKey(std::string key, ZeroMeansUnset<S> field, std::string comment,
            Check<double> check = nullptr)
      : key_(std::move(key)),
        comment_(std::move(comment)),
        field_(std::make_shared<
               config_internal::MemberField<S, double, config_internal::ZeroMeansUnsetValue,
                                            config_internal::DirectAccess<S, double>>>(
            config_internal::DirectAccess<S, double>{field.field}, std::move(check))) {}

  // The file must set the key (TomlFile::Finish reports it missing).
  ConfigKey Required() && {
    required_ = true;
    return std::move(*this);
  }
  // A file path: a relative value is made absolute against the directory of the config file
  // after reading (whether the file set it or not; "" stays "").
  ConfigKey Path() && {
    path_ = true;
    return std::move(*this);
  }
  // While the value is unset (an empty optional, or 0 with UnsetWhenZero), it is rendered as
  // "# key = <example>".
  ConfigKey Example(std::string example) && {
    example_ = std::move(example);
    return std::move(*this);
  }
  // Renders the row (comment and value) with `render` instead; "" leaves the key out.
  ConfigKey RenderedBy(std::function<std::string(const S&)> render) && {
    render_ = std::move(render);
    return std::move(*this);
  }

  const std::string& key() const { return key_; }
  bool required() const { return required_; }
  bool path() const { return path_; }

  // Reads the key of `section` into *out if the file sets it (declaring it as accepted); returns
  // whether it was set. Throws ConfigError for a value of the wrong type.
  bool Read(TomlFile& file, const std::string& section, S* out) const {
    return field_->Read(file, section, key_,
                        required_ ? TomlFile::Presence::kRequired : TomlFile::Presence::kOptional,
                        out);
  }
  // For a Path() key: resolves a relative value against the directory of `config_path`.
  void ResolvePath(const std::string& config_path, S* out) const {
    if (path_) field_->ResolvePath(config_path, out);
  }
  // Runs the check. Throws ConfigError "<config_path>: [section] key: <verdict>" if refused.
  void Validate(const S& config, const std::string& config_path,
                const std::string& section) const {
    const Verdict verdict = field_->Check(config);
    if (!verdict.accepted()) {
      throw ConfigError(SettingName(config_path, section, key_) + ": " +
                        verdict.Message(ValueText(config)));
    }
  }
  // The comment lines and "key = value\n" (or "# key = <example>\n" while unset).
  std::string Render(const S& config) const {
    if (render_) return render_(config);
    const std::optional<std::string> literal = field_->Literal(config);
    return config_internal::CommentLines(comment_) +
           (literal ? key_ + " = " + *literal : "# " + key_ + " = " + example_) + "\n";
  }
  // The values are equal (doubles compare as doubles: NaN differs from everything).
  bool Equal(const S& a, const S& b) const { return field_->Equal(a, b); }
  // The value as TOML text, "nothing" when unset.
  std::string ValueText(const S& config) const {
    return field_->Literal(config).value_or("nothing");
  }

  // This row seen through the member `member` of Outer.
  template <typename Outer>
  ConfigKey<Outer> In(S Outer::*member) const {
    ConfigKey<Outer> lifted(key_, comment_,
                            std::make_shared<config_internal::LiftedField<Outer, S>>(member,
                                                                                     field_));
    lifted.required_ = required_;
    lifted.path_ = path_;
    lifted.example_ = example_;
    if (render_) {
      lifted.render_ = [member, render = render_](const Outer& o) { return render(o.*member); };
    }
    return lifted;
  }

 private:
  template <typename>
  friend class ConfigKey;
  ConfigKey(std::string key, std::string comment,
            std::shared_ptr<const config_internal::Field<S>> field)
      : key_(std::move(key)), comment_(std::move(comment)), field_(std::move(field)) {}

  std::string key_;
  std::string comment_;
  std::shared_ptr<const config_internal::Field<S>> field_;
  bool required_ = false;
  bool path_ = false;
  std::string example_;
  std::function<std::string(const S&)> render_;
};

// `keys` of the member struct Inner, as rows of Outer.
template <typename Outer, typename Inner>
std::vector<ConfigKey<Outer>> Lift(Inner Outer::*member,
                                   const std::vector<ConfigKey<Inner>>& keys) {
  std::vector<ConfigKey<Outer>> lifted;
  lifted.reserve(keys.size());
  for (const ConfigKey<Inner>& key : keys) lifted.push_back(key.template In<Outer>(member));
  return lifted;
}

// `a` followed by `b`.
template <typename S>
std::vector<ConfigKey<S>> Concat(std::vector<ConfigKey<S>> a, const std::vector<ConfigKey<S>>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// ---- sections ----

// A rule of a section that no single key's check states (or a whole-struct validator of another
// library, such as ValidatePreprocessSpec): throws ConfigError naming config_path, section and
// key when `config` breaks it.
template <typename S>
using SectionCheck = std::function<void(const S& config, const std::string& config_path)>;

// A key that is no longer accepted, and why (TomlFile::Refuse).
struct RetiredKey {
  std::string key;
  std::string why;
};

template <typename S>
struct ConfigSection {
  std::string name;                   // the TOML table, e.g. "training"
  std::string comment;                // written under [name] ('\n'-separated lines; "" = none)
  std::vector<ConfigKey<S>> keys;     // in file order
  std::vector<SectionCheck<S>> checks = {};  // run after the keys' checks, in order
  std::vector<RetiredKey> retired = {};

  // This section seen through the member `member` of Outer.
  template <typename Outer>
  ConfigSection<Outer> In(S Outer::*member) const {
    ConfigSection<Outer> lifted{name, comment, Lift(member, keys), {}, retired};
    for (const SectionCheck<S>& check : checks) {
      lifted.checks.push_back(
          [member, check](const Outer& o, const std::string& path) { check(o.*member, path); });
    }
    return lifted;
  }
};

// Reads every key of `section` that the file sets into *out (keys it does not set keep their
// values), declaring them as accepted, then resolves the Path() keys against file.path().
// Throws ConfigError for a value of the wrong type, or for a retired key the file sets.
template <typename S>
void ReadSection(TomlFile& file, const ConfigSection<S>& section, S* out) {
  for (const RetiredKey& retired : section.retired) {
    file.Refuse(section.name, retired.key, retired.why);
  }
  for (const ConfigKey<S>& key : section.keys) key.Read(file, section.name, out);
  for (const ConfigKey<S>& key : section.keys) key.ResolvePath(file.path(), out);
}

// Runs the keys' checks in order, then the section's checks. Throws ConfigError
// "<config_path>: [section] key: ..." for the first violation ("" = "(configuration built in
// code)").
template <typename S>
void ValidateSection(const ConfigSection<S>& section, const S& config,
                     const std::string& config_path) {
  for (const ConfigKey<S>& key : section.keys) key.Validate(config, config_path, section.name);
  for (const SectionCheck<S>& check : section.checks) check(config, config_path);
}

// "[name]\n", the section comment, then every key's comment and value. Never throws.
template <typename S>
std::string RenderSection(const ConfigSection<S>& section, const S& config) {
  std::string text = "[" + section.name + "]\n" + config_internal::CommentLines(section.comment);
  for (const ConfigKey<S>& key : section.keys) text += key.Render(config);
  return text;
}

// Every key of the section has equal values in `a` and `b`. Never throws.
template <typename S>
bool SectionEqual(const ConfigSection<S>& section, const S& a, const S& b) {
  for (const ConfigKey<S>& key : section.keys) {
    if (!key.Equal(a, b)) return false;
  }
  return true;
}

// ---- files: a list of sections ----

template <typename S>
using ConfigSections = std::vector<ConfigSection<S>>;

// ReadSection for each section, in order.
template <typename S>
void ReadSections(TomlFile& file, const ConfigSections<S>& sections, S* out) {
  for (const ConfigSection<S>& section : sections) ReadSection(file, section, out);
}

// ValidateSection for each section, in order (the first violation is thrown).
template <typename S>
void ValidateSections(const ConfigSections<S>& sections, const S& config,
                      const std::string& config_path) {
  for (const ConfigSection<S>& section : sections) ValidateSection(section, config, config_path);
}

// `header` as comment lines, then each section after a blank line. Never throws.
template <typename S>
std::string RenderSections(const std::string& header, const ConfigSections<S>& sections,
                           const S& config) {
  std::string text = config_internal::CommentLines(header);
  for (const ConfigSection<S>& section : sections) text += "\n" + RenderSection(section, config);
  return text;
}

// SectionEqual for every section. Never throws.
template <typename S>
bool SectionsEqual(const ConfigSections<S>& sections, const S& a, const S& b) {
  for (const ConfigSection<S>& section : sections) {
    if (!SectionEqual(section, a, b)) return false;
  }
  return true;
}

// The section named `name`. Throws std::out_of_range if there is none.
template <typename S>
const ConfigSection<S>& FindSection(const ConfigSections<S>& sections, const std::string& name) {
  for (const ConfigSection<S>& section : sections) {
    if (section.name == name) return section;
  }
  throw std::out_of_range("no configuration section [" + name + "]");
}

}  // namespace fedmed

#endif  // FEDMED_COMMON_CONFIG_CONFIG_SCHEMA_H_
