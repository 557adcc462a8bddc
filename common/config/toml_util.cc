#include "common/config/toml_util.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <system_error>

#include "common/util/error.h"

namespace fedmed {

namespace fs = std::filesystem;

namespace {

std::string JoinQuoted(const std::vector<std::string>& items, const std::string& open,
                       const std::string& close) {
  std::string text;
  for (const std::string& item : items) text += (text.empty() ? "" : ", ") + open + item + close;
  return text;
}

// A TOML value for an error message: "the integer 5", "the string \"abc\"", "a table".
std::string Describe(const toml::node& node) {
  std::ostringstream literal;
  node.visit([&literal](const auto& v) {
    if constexpr (!toml::is_table<decltype(v)>) literal << v;
  });
  switch (node.type()) {
    case toml::node_type::string:
      return "the string " + TomlString(*node.value<std::string>());
    case toml::node_type::integer:
      return "the integer " + literal.str();
    case toml::node_type::floating_point:
      return "the number " + TomlDouble(*node.value<double>());
    case toml::node_type::boolean:
      return "the boolean " + literal.str();
    case toml::node_type::array:
      return "the array " + literal.str();
    case toml::node_type::table:
      return "a table";
    default:
      return "the date/time " + literal.str();
  }
}

}  // namespace

struct TomlFile::Impl {
  std::string path;
  toml::table root;
  // Accepted sections and their accepted keys, in the order Read() declared them.
  std::vector<std::pair<std::string, std::vector<std::string>>> accepted;
  std::vector<std::string> missing;  // "[section] key" of absent required keys

  std::vector<std::string>& AcceptedKeys(const std::string& section) {
    for (auto& [name, keys] : accepted) {
      if (name == section) return keys;
    }
    accepted.emplace_back(section, std::vector<std::string>{});
    return accepted.back().second;
  }

  [[noreturn]] void TypeError(const std::string& section, const std::string& key,
                              const toml::node& node, const std::string& expected) const {
    ThrowBadSetting(path, section, key, expected,
                    Describe(node) + " (line " + std::to_string(node.source().begin.line) + ")");
  }

  // The node of `section`.`key`, or nullptr when absent (one lookup in the parsed tree). Throws
  // ConfigError when `section` is in the file but is not a table.
  const toml::node* Find(const std::string& section, const std::string& key) const {
    const toml::node* section_node = root.get(section);
    if (section_node != nullptr && !section_node->is_table()) {
      throw ConfigError(path + ": [" + section + "]: expected a table (a [" + section +
                        "] section), got " + Describe(*section_node) + " (line " +
                        std::to_string(section_node->source().begin.line) + ")");
    }
    return section_node != nullptr ? section_node->as_table()->get(key) : nullptr;
  }

  // Find(), declaring the key as accepted (and noting it when required and absent).
  const toml::node* Lookup(const std::string& section, const std::string& key,
                           Presence presence) {
    std::vector<std::string>& keys = AcceptedKeys(section);
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
    const toml::node* node = Find(section, key);
    if (node == nullptr && presence == Presence::kRequired) {
      missing.push_back("[" + section + "] " + key);
    }
    return node;
  }

  int64_t ReadInteger(const std::string& section, const std::string& key, const toml::node& node,
                      int64_t min, int64_t max, const std::string& expected) const {
    if (!node.is_integer()) TypeError(section, key, node, expected);
    const int64_t v = *node.value<int64_t>();
    if (v < min || v > max) TypeError(section, key, node, expected);
    return v;
  }
};

TomlFile::TomlFile(const std::string& path) : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    throw ConfigError(path + ": cannot read configuration file: it is a directory");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path + ": cannot read configuration file: " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw ConfigError(path + ": cannot read configuration file");
  try {
    impl_->root = toml::parse(text.str(), path);
  } catch (const toml::parse_error& e) {
    throw ConfigError(path + ":" + std::to_string(e.source().begin.line) + ":" +
                      std::to_string(e.source().begin.column) +
                      ": not valid TOML: " + std::string(e.description()));
  }
}

TomlFile::~TomlFile() = default;

const std::string& TomlFile::path() const { return impl_->path; }

bool TomlFile::Read(const std::string& section, const std::string& key, std::string* out,
                    Presence presence) {
  const toml::node* node = impl_->Lookup(section, key, presence);
  if (node == nullptr) return false;
  if (!node->is_string()) impl_->TypeError(section, key, *node, "a string");
  *out = *node->value<std::string>();
  return true;
}

bool TomlFile::Read(const std::string& section, const std::string& key, bool* out,
                    Presence presence) {
  const toml::node* node = impl_->Lookup(section, key, presence);
  if (node == nullptr) return false;
  if (!node->is_boolean()) impl_->TypeError(section, key, *node, "true or false");
  *out = *node->value<bool>();
  return true;
}

bool TomlFile::Read(const std::string& section, const std::string& key, int* out,
                    Presence presence) {
  const toml::node* node = impl_->Lookup(section, key, presence);
  if (node == nullptr) return false;
  constexpr int64_t kMin = std::numeric_limits<int>::min();
  constexpr int64_t kMax = std::numeric_limits<int>::max();
  *out = static_cast<int>(impl_->ReadInteger(
      section, key, *node, kMin, kMax,
      "an integer between " + std::to_string(kMin) + " and " + std::to_string(kMax)));
  return true;
}

bool TomlFile::Read(const std::string& section, const std::string& key, int64_t* out,
                    Presence presence) {
  const toml::node* node = impl_->Lookup(section, key, presence);
  if (node == nullptr) return false;
  *out = impl_->ReadInteger(section, key, *node, std::numeric_limits<int64_t>::min(),
                            std::numeric_limits<int64_t>::max(), "an integer");
  return true;
}

bool TomlFile::Read(const std::string& section, const std::string& key, uint64_t* out,
                    Presence presence) {
  const toml::node* node = impl_->Lookup(section, key, presence);
  if (node == nullptr) return false;
  *out = static_cast<uint64_t>(impl_->ReadInteger(
      section, key, *node, 0, std::numeric_limits<int64_t>::max(), "a non-negative integer"));
  return true;
}

bool TomlFile::Read(const std::string& section, const std::string& key, double* out,
                    Presence presence) {
  const toml::node* node = impl_->Lookup(section, key, presence);
  if (node == nullptr) return false;
  if (!node->is_number()) impl_->TypeError(section, key, *node, "a number");
  *out = *node->value<double>();
  return true;
}

bool TomlFile::Read(const std::string& section, const std::string& key,
                    std::vector<std::string>* out, Presence presence) {
  const toml::node* node = impl_->Lookup(section, key, presence);
  if (node == nullptr) return false;
  const toml::array* array = node->as_array();
  // toml++ calls an empty array homogeneous in no type; it is a valid empty list here.
  if (array == nullptr || (!array->empty() && !array->is_homogeneous(toml::node_type::string))) {
    impl_->TypeError(section, key, *node, "an array of strings");
  }
  out->clear();
  for (const toml::node& item : *array) out->push_back(*item.value<std::string>());
  return true;
}

bool TomlFile::Read(const std::string& section, const std::string& key, std::vector<double>* out,
                    Presence presence) {
  const toml::node* node = impl_->Lookup(section, key, presence);
  if (node == nullptr) return false;
  const toml::array* array = node->as_array();
  bool numbers = array != nullptr;
  if (numbers) {
    for (const toml::node& item : *array) {
      numbers = numbers && (item.is_floating_point() || item.is_integer());
    }
  }
  if (!numbers) impl_->TypeError(section, key, *node, "an array of numbers");
  out->clear();
  for (const toml::node& item : *array) {
    out->push_back(item.is_integer() ? static_cast<double>(*item.value<int64_t>())
                                     : *item.value<double>());
  }
  return true;
}

void TomlFile::Refuse(const std::string& section, const std::string& key,
                      const std::string& why) {
  const toml::node* node = impl_->Find(section, key);
  if (node == nullptr) return;
  throw ConfigError(SettingName(impl_->path, section, key) + ": " + why + " (line " +
                    std::to_string(node->source().begin.line) + ")");
}

void TomlFile::Finish() {
  const Impl& impl = *impl_;
  std::vector<std::string> sections;
  for (const auto& [name, keys] : impl.accepted) sections.push_back(name);
  for (auto&& [name_key, node] : impl.root) {
    const std::string name(name_key.str());
    const auto it = std::find_if(impl.accepted.begin(), impl.accepted.end(),
                                 [&name](const auto& entry) { return entry.first == name; });
    if (it == impl.accepted.end()) {
      const std::string what = node.is_table() ? "unknown section [" + name + "]"
                                               : "unknown top-level key " + name;
      throw ConfigError(impl.path + ": " + what + " (line " +
                        std::to_string(node.source().begin.line) + "); accepted sections: " +
                        JoinQuoted(sections, "[", "]"));
    }
    for (auto&& [key_name, value] : *node.as_table()) {
      const std::string key(key_name.str());
      if (std::find(it->second.begin(), it->second.end(), key) == it->second.end()) {
        throw ConfigError(SettingName(impl.path, name, key) + ": unknown key (line " +
                          std::to_string(value.source().begin.line) + "); accepted keys in [" +
                          name + "]: " + JoinQuoted(it->second, "", ""));
      }
    }
  }
  if (!impl.missing.empty()) {
    throw ConfigError(impl.path + ": " + impl.missing.front() +
                      ": expected a value, got nothing (this key is required)");
  }
}

std::string SettingName(const std::string& file, const std::string& section,
                        const std::string& key) {
  return SectionName(file, section) + " " + key;
}

std::string SectionName(const std::string& file, const std::string& section) {
  return (file.empty() ? std::string("(configuration built in code)") : file) + ": [" + section +
         "]";
}

void ThrowBadSetting(const std::string& file, const std::string& section, const std::string& key,
                     const std::string& expected, const std::string& got) {
  throw ConfigError(SettingName(file, section, key) + ": expected " + expected + ", got " + got);
}

std::string ResolveRelativeTo(const std::string& config_path, const std::string& path) {
  if (path.empty() || fs::path(path).is_absolute()) return path;
  const fs::path dir = fs::absolute(fs::path(config_path)).parent_path();
  return (dir / path).lexically_normal().string();
}

bool ParseHostPort(const std::string& address, std::string* host, int* port) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) return false;
  std::string h = address.substr(0, colon);
  if (h.front() == '[') {
    if (h.size() < 3 || h.back() != ']') return false;
    h = h.substr(1, h.size() - 2);
  } else if (h.find(':') != std::string::npos) {
    return false;  // a bare IPv6 address needs brackets: [::1]:7443
  }
  const std::string p = address.substr(colon + 1);
  int value = 0;
  const auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), value);
  if (ec != std::errc() || end != p.data() + p.size() || value < 0 || value > 65535) return false;
  *host = h;
  *port = value;
  return true;
}

std::string TomlString(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\f': out += "\\f"; break;
      case '\r': out += "\\r"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          char escaped[8];
          std::snprintf(escaped, sizeof(escaped), "\\u%04X", static_cast<unsigned char>(c));
          out += escaped;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string TomlDouble(double v) {
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  std::string text(buf, ec == std::errc() ? end : buf);
  if (text.find_first_of(".eni") == std::string::npos) text += ".0";  // 600 -> 600.0
  return text;
}

std::string TomlStringArray(const std::vector<std::string>& v) {
  std::string text = "[";
  for (size_t i = 0; i < v.size(); ++i) text += (i > 0 ? ", " : "") + TomlString(v[i]);
  return text + "]";
}

}  // namespace fedmed
