// Conversions between the domain messages of common/transport/messages.h and their protobuf form
// (proto/fedmed.proto), in one place for both ends of the connection: the site agent
// (site_agent/connection.cc) and the coordinator's services (coordinator/transport/) are the only
// callers. The secure-aggregation parts are in secagg_wire.h.
//
// Decoding does not validate values: a field a peer left out reads as its default (proto3), and
// whatever a peer sent arrives as sent, for the receiver's checks to judge. The one exception is
// a name that must become an enum: an unknown privacy mechanism (in UpdateHeader and
// DeclineRequest) throws FormatError naming the field.
#ifndef FEDMED_COMMON_TRANSPORT_WIRE_H_
#define FEDMED_COMMON_TRANSPORT_WIRE_H_

#include <cstdint>

#include "common/transport/messages.h"

namespace fedmed {
namespace v1 {
class RegisterRequest;
class RegisterReply;
class HelloReply;
class Task;
class ModelRef;
class UpdateHeader;
class PrivacySpend;
class Metrics;
class EvaluationReport;
class DeclineRequest;
class SecAggMessage;
class SecAggPoll;
class SecAggBroadcast;
}  // namespace v1

void ToProto(const RegistrationInfo& in, v1::RegisterRequest* out);
RegistrationInfo FromProto(const v1::RegisterRequest& in);

void ToProto(const Registration& in, v1::RegisterReply* out);
Registration FromProto(const v1::RegisterReply& in);

void ToProto(const HelloAnswer& in, v1::HelloReply* out);
HelloAnswer FromProto(const v1::HelloReply& in);

void ToProto(const ModelRef& in, v1::ModelRef* out);
ModelRef FromProto(const v1::ModelRef& in);

// A task. `now_unix_ms`: the sender's clock; SiteTask::seconds_left travels as an absolute
// deadline (deadline_unix_ms = now_unix_ms + 1000 * seconds_left) and comes back relative to the
// receiver's `now_unix_ms`.
void ToProto(const SiteTask& in, int64_t now_unix_ms, v1::Task* out);
SiteTask FromProto(const v1::Task& in, int64_t now_unix_ms);

void ToProto(const PrivacySpend& in, v1::PrivacySpend* out);
PrivacySpend FromProto(const v1::PrivacySpend& in);

void ToProto(const UpdateHeader& in, v1::UpdateHeader* out);
UpdateHeader FromProto(const v1::UpdateHeader& in);

void ToProto(const ClassificationMetrics& in, v1::Metrics* out);
ClassificationMetrics FromProto(const v1::Metrics& in);

void ToProto(const EvaluationReport& in, v1::EvaluationReport* out);
EvaluationReport FromProto(const v1::EvaluationReport& in);

void ToProto(const DeclineRequest& in, v1::DeclineRequest* out);
DeclineRequest FromProto(const v1::DeclineRequest& in);

void ToProto(const SecAggMessage& in, v1::SecAggMessage* out);
SecAggMessage FromProto(const v1::SecAggMessage& in);

void ToProto(const SecAggPoll& in, v1::SecAggPoll* out);
SecAggPoll FromProto(const v1::SecAggPoll& in);

void ToProto(const SecAggStage& in, v1::SecAggBroadcast* out);
SecAggStage FromProto(const v1::SecAggBroadcast& in);

// Milliseconds since the Unix epoch, now (system clock).
int64_t UnixMillisNow();

}  // namespace fedmed

#endif  // FEDMED_COMMON_TRANSPORT_WIRE_H_
