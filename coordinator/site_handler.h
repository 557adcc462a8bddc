// What a site can ask of the coordinator, as a domain interface: the calls of the
// Federation service (proto/fedmed.proto) with the messages of common/transport/messages.h and
// one Status per answer (common/util/status.h). coordinator/transport/service.cc is the only
// file that turns gRPC calls into calls of this interface; tests call it directly, with no
// server.
//
// `site` is always the authenticated identity of the caller (the CN of its certificate, checked
// by the service against the federation CA and [tls] allowed_sites before any call reaches
// here). Every method may be called concurrently from any thread.
#ifndef FEDMED_COORDINATOR_SITE_HANDLER_H_
#define FEDMED_COORDINATOR_SITE_HANDLER_H_

#include <memory>
#include <string>

#include "common/transport/messages.h"
#include "common/util/status.h"

namespace fedmed {

// A global model ready to be streamed: its version, encoding (EncodeModelState) and SHA-256
// (hex).
struct EncodedModel {
  int version = 0;
  std::string bytes;
  std::string sha256;
};

class SiteHandler {
 public:
  virtual ~SiteHandler() = default;

  // Admits `site` to the federation (RegistrationPolicy, registration.h, decides) and opens a
  // new session for it. FAILED_PRECONDITION / INVALID_ARGUMENT with the reason when refused.
  virtual Status Register(const std::string& site, const RegistrationInfo& request,
                          Registration* reply) = 0;
  // The task of `site` now; waits up to `wait_ms` (capped at 30 s) while there is none.
  // NOT_FOUND for a session that is not the site's current one; UNAVAILABLE while stopping.
  virtual Status Poll(const std::string& site, const std::string& session_id, int wait_ms,
                      SiteTask* task) = 0;
  // The global model of `version` for download. FAILED_PRECONDITION when it is not the current.
  virtual Status GetModel(const std::string& site, const std::string& session_id, int version,
                          std::shared_ptr<const EncodedModel>* model) = 0;
  // Judges an update's header before any of its data is received: whether `site` is expected
  // to send this update now, and whether its declared size fits (update_acceptance.h).
  virtual Status CheckUpdate(const std::string& site, const UpdateHeader& header) = 0;
  // Takes a complete update whose size and digest the transport has checked against `header`.
  // `transfer_seconds`: how long the upload took.
  virtual Status AcceptUpdate(const std::string& site, const UpdateHeader& header,
                              std::string bytes, double transfer_seconds) = 0;
  // A site's federated-evaluation report for the round being evaluated.
  virtual Status AcceptEvaluation(const std::string& site, const EvaluationReport& report) = 0;
  // A site declines its training task of a round (a spent privacy budget, a model it cannot
  // train): the round stops waiting for it.
  virtual Status DeclineTask(const std::string& site, const DeclineRequest& request) = 0;
  // Secure aggregation: a stage message of `site` (keys, shares or unmasking shares).
  virtual Status SecAggSend(const std::string& site, const SecAggMessage& message) = 0;
  // Secure aggregation: what `site` waits for at poll.stage; waits up to poll.wait_ms.
  virtual Status SecAggReceive(const std::string& site, const SecAggPoll& poll,
                               SecAggStage* stage) = 0;
  // Server-side seconds spent streaming a model download to `site` (for the round's timings).
  virtual void RecordDownload(const std::string& site, double seconds) = 0;
  // The transport refused the data of an upload whose header CheckUpdate accepted (`why`:
  // INVALID_ARGUMENT for bytes that do not match the header's size or digest, a second header,
  // too many chunks): counted like a refused update.
  virtual void UploadFailed(const std::string& site, const Status& why) = 0;
  // Presence (the Attend stream): OK when `session_id` is `site`'s current session, which then
  // counts as present until SiteGone; NOT_FOUND otherwise.
  virtual Status Attend(const std::string& site, const std::string& session_id) = 0;
  // The Attend stream of `site`'s session `session_id` ended: the site is gone (its process
  // exited or its connection broke). Nothing happens for a session that is no longer current.
  virtual void SiteGone(const std::string& site, const std::string& session_id) = 0;
  // Who the coordinator is (Hello; fedmed-site check): the federation's name, the coordinator's
  // version (common/util/version.h), its clock in unix ms, and `site` as authenticated. Changes
  // nothing (no registration, no session). `software_version`: the site's, for the log.
  virtual Status Hello(const std::string& site, const std::string& software_version,
                       HelloAnswer* answer) = 0;
};

}  // namespace fedmed

#endif  // FEDMED_COORDINATOR_SITE_HANDLER_H_
