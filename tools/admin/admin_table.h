// fedmed-admin status: the /api/status JSON document (coordinator/status/status_json.h) as text
// tables for a terminal: the federation's phase, round and stage, elapsed time and estimate, the
// latest round's global metrics, one row per site (state, last seen, rounds contributed, last
// update's size and norm, epsilon spent of its budget, software version, certificate expiry),
// and the latest refusals and dropouts. Pure: no I/O.
#ifndef FEDMED_TOOLS_ADMIN_ADMIN_TABLE_H_
#define FEDMED_TOOLS_ADMIN_ADMIN_TABLE_H_

#include <string>

namespace fedmed {

// `status_json`: /api/status. At most `max_events` of the latest events are listed. Throws
// FormatError when the document is not JSON or lacks the fields named above.
std::string FormatStatusTable(const std::string& status_json, int max_events = 5);

}  // namespace fedmed

#endif  // FEDMED_TOOLS_ADMIN_ADMIN_TABLE_H_
