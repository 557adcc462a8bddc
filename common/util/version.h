// fedmed's software version, as sites announce it at registration and the coordinator in Hello
// (proto/fedmed.proto). Keep it equal to project(VERSION) in the top-level CMakeLists.txt.
#ifndef FEDMED_COMMON_UTIL_VERSION_H_
#define FEDMED_COMMON_UTIL_VERSION_H_

namespace fedmed {

inline constexpr const char* kFedmedVersion = "fedmed 0.1.0";

}  // namespace fedmed

#endif  // FEDMED_COMMON_UTIL_VERSION_H_
