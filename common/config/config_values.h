// The values and checks of configuration keys (the building blocks of config_schema.h): the
// Verdict a key's check returns and the common checks; how each field type is read from a
// TomlFile and written as TOML text; and the type-erased field access a ConfigKey holds.
// Include config_schema.h, which includes this.
#ifndef FEDMED_COMMON_CONFIG_CONFIG_VALUES_H_
#define FEDMED_COMMON_CONFIG_CONFIG_VALUES_H_

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/config/toml_util.h"

namespace fedmed {

// ---- checks ----

// What a key's check says about its value: accepted, or refused with the reason. Built by
// Require (the usual "expected <what>, got <value>") or Verdict::Refused (any other wording).
class Verdict {
 public:
  Verdict() = default;  // accepted

  // Refused: "expected <expected>, got <got>"; without `got`, the key's value as TOML text
  // ("nothing" when unset).
  static Verdict Expected(std::string expected, std::optional<std::string> got = std::nullopt);
  // Refused with `message` as the whole text after "key: ".
  static Verdict Refused(std::string message);

  bool accepted() const { return !refused_; }
  // The text after "<file>: [section] key: " for a refused value whose TOML text is `value`.
  std::string Message(const std::string& value) const;

 private:
  bool refused_ = false;
  bool expected_form_ = false;
  std::string text_;
  std::optional<std::string> got_;
};

// Accepted if `ok`, else Verdict::Expected(expected) (or with `got`).
Verdict Require(bool ok, std::string expected);
Verdict Require(bool ok, std::string expected, std::string got);

// "\"a\", \"b\" or \"c\"": TOML strings joined for an error message.
std::string ChoiceList(const std::vector<std::string>& names);

// Checks for the common rules; each returns a generic callable usable as any row's check.
// "an integer >= <min>".
inline auto IntAtLeast(int64_t min) {
  return [min](const auto& v, const auto&) {
    return Require(static_cast<int64_t>(v) >= min, "an integer >= " + std::to_string(min));
  };
}
// "<what> > 0" (NaN refused).
inline auto Positive(std::string what = "a number") {
  return [what](double v, const auto&) { return Require(v > 0, what + " > 0"); };
}
// `what` when the string is empty.
inline auto NonEmpty(std::string what) {
  return [what](const std::string& v, const auto&) { return Require(!v.empty(), what); };
}
// One of `names`: "\"sgd\" or \"adam\"".
inline auto OneOf(std::vector<std::string> names) {
  return [names](const std::string& v, const auto&) {
    bool known = false;
    for (const std::string& name : names) known = known || v == name;
    return Require(known, ChoiceList(names));
  };
}

// ---- fields ----

// A double of S for which 0 means "not set": rendered as a comment while 0, and shown as
// "nothing" in error messages. Made by UnsetWhenZero.
template <typename S>
struct ZeroMeansUnset {
  double S::*field;
};
template <typename S>
ZeroMeansUnset<S> UnsetWhenZero(double S::*field) {
  return {field};
}

// The field `inner` of the member `outer` of S, e.g. Member(&SiteConfig::tls, &TlsFiles::cert).
template <typename S, typename M, typename T>
struct MemberPath {
  M S::*outer;
  T M::*inner;
};
template <typename S, typename M, typename T>
MemberPath<S, M, T> Member(M S::*outer, T M::*inner) {
  return {outer, inner};
}

namespace config_internal {

// How a field type is read and written: Read returns whether the key was present; Literal is the
// value as TOML text, or nullopt when the value counts as unset.
template <typename T>
struct Value {
  static bool Read(TomlFile& f, const std::string& s, const std::string& k, TomlFile::Presence p,
                   T* out) {
    return f.Read(s, k, out, p);
  }
  static std::optional<std::string> Literal(const T& v);
};
template <>
inline std::optional<std::string> Value<std::string>::Literal(const std::string& v) {
  return TomlString(v);
}
template <>
inline std::optional<std::string> Value<bool>::Literal(const bool& v) {
  return TomlBool(v);
}
template <>
inline std::optional<std::string> Value<int>::Literal(const int& v) {
  return std::to_string(v);
}
template <>
inline std::optional<std::string> Value<int64_t>::Literal(const int64_t& v) {
  return std::to_string(v);
}
template <>
inline std::optional<std::string> Value<uint64_t>::Literal(const uint64_t& v) {
  return std::to_string(v);
}
template <>
inline std::optional<std::string> Value<double>::Literal(const double& v) {
  return TomlDouble(v);
}
template <>
inline std::optional<std::string> Value<std::vector<std::string>>::Literal(
    const std::vector<std::string>& v) {
  return TomlStringArray(v);
}

template <>
struct Value<std::optional<double>> {
  static bool Read(TomlFile& f, const std::string& s, const std::string& k, TomlFile::Presence p,
                   std::optional<double>* out) {
    double v = 0;
    if (!f.Read(s, k, &v, p)) return false;
    *out = v;
    return true;
  }
  static std::optional<std::string> Literal(const std::optional<double>& v) {
    return v ? std::optional<std::string>(TomlDouble(*v)) : std::nullopt;
  }
};

// Per-channel values: 1 number (used for every channel) or 3. Throws ConfigError "expected 1
// number (every channel) or 3 numbers (R, G, B) ..., got <n> numbers" for another count.
bool ReadChannelTriple(TomlFile& f, const std::string& section, const std::string& key,
                       TomlFile::Presence presence, std::array<double, 3>* out);
template <>
struct Value<std::array<double, 3>> {
  static bool Read(TomlFile& f, const std::string& s, const std::string& k, TomlFile::Presence p,
                   std::array<double, 3>* out) {
    return ReadChannelTriple(f, s, k, p, out);
  }
  static std::optional<std::string> Literal(const std::array<double, 3>& v) {
    return "[" + TomlDouble(v[0]) + ", " + TomlDouble(v[1]) + ", " + TomlDouble(v[2]) + "]";
  }
};

struct ZeroMeansUnsetValue : Value<double> {
  static std::optional<std::string> Literal(const double& v) {
    return v == 0 ? std::nullopt : Value<double>::Literal(v);
  }
};

// Type-erased access to one field of S: what a row does with it.
template <typename S>
class Field {
 public:
  virtual ~Field() = default;
  virtual bool Read(TomlFile& file, const std::string& section, const std::string& key,
                    TomlFile::Presence presence, S* out) const = 0;
  virtual std::optional<std::string> Literal(const S& s) const = 0;
  virtual bool Equal(const S& a, const S& b) const = 0;
  virtual void ResolvePath(const std::string& config_path, S* out) const = 0;
  virtual Verdict Check(const S& s) const = 0;
};

template <typename S, typename T>
struct DirectAccess {
  T S::*field;
  T& operator()(S& s) const { return s.*field; }
  const T& operator()(const S& s) const { return s.*field; }
};
template <typename S, typename M, typename T>
struct PathAccess {
  MemberPath<S, M, T> path;
  T& operator()(S& s) const { return (s.*path.outer).*path.inner; }
  const T& operator()(const S& s) const { return (s.*path.outer).*path.inner; }
};

template <typename S, typename T, typename V, typename Access>
class MemberField final : public Field<S> {
 public:
  MemberField(Access access, std::function<Verdict(const T&, const S&)> check)
      : access_(access), check_(std::move(check)) {}
  bool Read(TomlFile& file, const std::string& section, const std::string& key,
            TomlFile::Presence presence, S* out) const override {
    return V::Read(file, section, key, presence, &access_(*out));
  }
  std::optional<std::string> Literal(const S& s) const override { return V::Literal(access_(s)); }
  bool Equal(const S& a, const S& b) const override { return access_(a) == access_(b); }
  void ResolvePath(const std::string& config_path, S* out) const override {
    if constexpr (std::is_same_v<T, std::string>) {
      access_(*out) = ResolveRelativeTo(config_path, access_(*out));
    }
  }
  Verdict Check(const S& s) const override { return check_ ? check_(access_(s), s) : Verdict(); }

 private:
  Access access_;
  std::function<Verdict(const T&, const S&)> check_;
};

// A field of Inner seen through the member `member` of Outer (see Lift).
template <typename Outer, typename Inner>
class LiftedField final : public Field<Outer> {
 public:
  LiftedField(Inner Outer::*member, std::shared_ptr<const Field<Inner>> inner)
      : member_(member), inner_(std::move(inner)) {}
  bool Read(TomlFile& file, const std::string& section, const std::string& key,
            TomlFile::Presence presence, Outer* out) const override {
    return inner_->Read(file, section, key, presence, &(out->*member_));
  }
  std::optional<std::string> Literal(const Outer& s) const override {
    return inner_->Literal(s.*member_);
  }
  bool Equal(const Outer& a, const Outer& b) const override {
    return inner_->Equal(a.*member_, b.*member_);
  }
  void ResolvePath(const std::string& config_path, Outer* out) const override {
    inner_->ResolvePath(config_path, &(out->*member_));
  }
  Verdict Check(const Outer& s) const override { return inner_->Check(s.*member_); }

 private:
  Inner Outer::*member_;
  std::shared_ptr<const Field<Inner>> inner_;
};

template <typename T>
struct Identity {
  using type = T;
};

// "# line\n" for each line of `comment` ("" for an empty comment).
std::string CommentLines(const std::string& comment);

}  // namespace config_internal

}  // namespace fedmed

#endif  // FEDMED_COMMON_CONFIG_CONFIG_VALUES_H_
