// What the federation's operator can ask of the coordinator (fedmed-admin), as a domain
// interface: the actions of the Admin service (proto/fedmed.proto) with one Status per answer.
// coordinator/transport/admin_service.cc is the only file that turns gRPC calls into calls of this
// interface; the round flow implements it (round_admin.cc); tests may call it directly.
//
// `operator_name` is always the authenticated identity of the caller: the CN of an operator
// certificate (CertificatePurpose::kOperator, common/crypto/pki.h), checked by the service before
// any call reaches here. Every action that is carried out is written to the coordinator's audit
// log ("admin" entries: operator, action, and its arguments) and to coordinator.log. `*outcome`
// receives one line saying what was done. Every method may be called from any thread.
#ifndef FEDMED_COORDINATOR_ADMIN_HANDLER_H_
#define FEDMED_COORDINATOR_ADMIN_HANDLER_H_

#include <string>

#include "common/util/status.h"

namespace fedmed {

class AdminHandler {
 public:
  virtual ~AdminHandler() = default;

  // After the current round ends (its checkpoint written), no new round starts until Resume;
  // before the first round, the first round waits. FAILED_PRECONDITION once the federation
  // finished or is stopping. Pausing a paused federation is OK (and says so).
  virtual Status Pause(const std::string& operator_name, std::string* outcome) = 0;
  // Lifts a pause: a round held by it starts now. OK (and says so) when not paused;
  // FAILED_PRECONDITION once the federation finished or is stopping.
  virtual Status Resume(const std::string& operator_name, std::string* outcome) = 0;
  // Stops the coordinator as SIGTERM does, except that its exit status is 0: the last completed
  // round's checkpoint and resume.json (written when that round ended) stay the resume point; a
  // round in progress is abandoned and runs again after a restart. FAILED_PRECONDITION when
  // already stopping.
  virtual Status StopFederation(const std::string& operator_name, std::string* outcome) = 0;
  // Leaves `site` out of the current round's wait and of every later round, for good (written
  // into resume.json at once when there is one, and with every later checkpoint, so a restart
  // keeps it; its registrations are refused naming the operator's reason).
  // NOT_FOUND for a site not in [tls] allowed_sites; INVALID_ARGUMENT for an empty reason;
  // FAILED_PRECONDITION when already excluded, finished or stopping.
  virtual Status Exclude(const std::string& operator_name, const std::string& site,
                         const std::string& reason, std::string* outcome) = 0;
  // Adds `rounds` (1..10000) rounds to the federation (kept in resume.json as exclusions are). INVALID_ARGUMENT
  // for rounds out of range; FAILED_PRECONDITION once the last round finished or when stopping.
  virtual Status Extend(const std::string& operator_name, int rounds, std::string* outcome) = 0;
};

}  // namespace fedmed

#endif  // FEDMED_COORDINATOR_ADMIN_HANDLER_H_
