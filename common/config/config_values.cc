#include "common/config/config_values.h"

namespace fedmed {

Verdict Verdict::Expected(std::string expected, std::optional<std::string> got) {
  Verdict v;
  v.refused_ = true;
  v.expected_form_ = true;
  v.text_ = std::move(expected);
  v.got_ = std::move(got);
  return v;
}

Verdict Verdict::Refused(std::string message) {
  Verdict v;
  v.refused_ = true;
  v.text_ = std::move(message);
  return v;
}

std::string Verdict::Message(const std::string& value) const {
  if (!expected_form_) return text_;
  return "expected " + text_ + ", got " + got_.value_or(value);
}

Verdict Require(bool ok, std::string expected) {
  return ok ? Verdict() : Verdict::Expected(std::move(expected));
}

Verdict Require(bool ok, std::string expected, std::string got) {
  return ok ? Verdict() : Verdict::Expected(std::move(expected), std::move(got));
}

std::string ChoiceList(const std::vector<std::string>& names) {
  std::string text;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) text += i + 1 == names.size() ? " or " : ", ";
    text += TomlString(names[i]);
  }
  return text;
}

namespace config_internal {

bool ReadChannelTriple(TomlFile& f, const std::string& section, const std::string& key,
                       TomlFile::Presence presence, std::array<double, 3>* out) {
  std::vector<double> values;
  if (!f.Read(section, key, &values, presence)) return false;
  if (values.size() == 1) values.assign(3, values[0]);
  if (values.size() != 3) {
    ThrowBadSetting(f.path(), section, key,
                    "1 number (every channel) or 3 numbers (R, G, B), e.g. [0.485, 0.456, 0.406]",
                    std::to_string(values.size()) + " numbers");
  }
  *out = {values[0], values[1], values[2]};
  return true;
}

std::string CommentLines(const std::string& comment) {
  std::string text;
  std::size_t begin = 0;
  while (begin < comment.size()) {
    std::size_t end = comment.find('\n', begin);
    if (end == std::string::npos) end = comment.size();
    text += "# " + comment.substr(begin, end - begin) + "\n";
    begin = end + 1;
  }
  return text;
}

}  // namespace config_internal

}  // namespace fedmed
