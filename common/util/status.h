// Status: the outcome of a request that a peer can get wrong, in the manner of leveldb::Status.
//
// The coordinator's domain layer (coordinator/site_handler.h and what implements it) answers
// every site request with a Status instead of throwing: a refusal is an expected result, not an
// error of the coordinator. The message is written for the operator and the refused site alike:
// it names the site, the field and what was expected. coordinator/transport/service.cc maps a Status to a
// grpc::Status in one place (the codes mirror gRPC's, so the mapping is one-to-one); nothing
// else in the domain layer knows about gRPC.
#ifndef FEDMED_COMMON_UTIL_STATUS_H_
#define FEDMED_COMMON_UTIL_STATUS_H_

#include <string>
#include <utility>

namespace fedmed {

class [[nodiscard]] Status {
 public:
  enum class Code {
    kOk = 0,
    kCancelled,           // the peer went away
    kInvalidArgument,     // the request itself is malformed (a field out of its range)
    kNotFound,            // unknown session: the site must register again
    kPermissionDenied,    // the peer is not allowed to do this at all
    kResourceExhausted,   // a per-site limit was reached (streams, chunks, bytes)
    kFailedPrecondition,  // well-formed but not acceptable now or for this federation
    kUnavailable,         // the coordinator is shutting down: retry later
    kInternal,            // the coordinator failed (not the peer's fault)
  };

  Status() = default;  // OK
  static Status OK() { return Status(); }
  static Status Cancelled(std::string m) { return Status(Code::kCancelled, std::move(m)); }
  static Status InvalidArgument(std::string m) {
    return Status(Code::kInvalidArgument, std::move(m));
  }
  static Status NotFound(std::string m) { return Status(Code::kNotFound, std::move(m)); }
  static Status PermissionDenied(std::string m) {
    return Status(Code::kPermissionDenied, std::move(m));
  }
  static Status ResourceExhausted(std::string m) {
    return Status(Code::kResourceExhausted, std::move(m));
  }
  static Status FailedPrecondition(std::string m) {
    return Status(Code::kFailedPrecondition, std::move(m));
  }
  static Status Unavailable(std::string m) { return Status(Code::kUnavailable, std::move(m)); }
  static Status Internal(std::string m) { return Status(Code::kInternal, std::move(m)); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  // Why the request was refused ("" when ok()).
  const std::string& message() const { return message_; }
  // "FAILED_PRECONDITION: <message>", or "OK".
  std::string ToString() const;

 private:
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

// The upper-case name of `code`, as gRPC spells it ("FAILED_PRECONDITION").
const char* StatusCodeName(Status::Code code);

inline std::string Status::ToString() const {
  return ok() ? std::string("OK") : std::string(StatusCodeName(code_)) + ": " + message_;
}

inline const char* StatusCodeName(Status::Code code) {
  switch (code) {
    case Status::Code::kOk: return "OK";
    case Status::Code::kCancelled: return "CANCELLED";
    case Status::Code::kInvalidArgument: return "INVALID_ARGUMENT";
    case Status::Code::kNotFound: return "NOT_FOUND";
    case Status::Code::kPermissionDenied: return "PERMISSION_DENIED";
    case Status::Code::kResourceExhausted: return "RESOURCE_EXHAUSTED";
    case Status::Code::kFailedPrecondition: return "FAILED_PRECONDITION";
    case Status::Code::kUnavailable: return "UNAVAILABLE";
    case Status::Code::kInternal: return "INTERNAL";
  }
  return "UNKNOWN";
}

}  // namespace fedmed

#endif  // FEDMED_COMMON_UTIL_STATUS_H_
