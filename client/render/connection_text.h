// How a Connection reads in a table: ss's columns and its -i / -p details.
#ifndef TCBSCOPE_CLIENT_RENDER_CONNECTION_TEXT_H_
#define TCBSCOPE_CLIENT_RENDER_CONNECTION_TEXT_H_

#include <string>

#include "absl/strings/string_view.h"
#include "common/tcb.h"
#include "tcbscope/v1/inspector.pb.h"

namespace tcbscope {

// As ss prints it: "127.0.0.1:22", "[::1]:22", "0.0.0.0:22", "[::]:22" for a
// v6-only wildcard, "*:22" for a dual-stack one; port 0 prints as "*".
std::string FormatEndpoint(const v1::Connection& c, const v1::Endpoint& e);
// The same for one of a Tcb's endpoints (t.local or t.remote).
std::string FormatEndpoint(const Tcb& t, const Endpoint& e);
// ss's -p form: users:(("sshd",pid=812,fd=3),...); empty when no owner.
std::string FormatOwners(const v1::Connection& c);
// ss's -i line: congestion, options, timers, rtt, windows, byte counters.
std::string FormatTcpInfo(const v1::Connection& c);

// The same texts appended to *out, for a caller that reuses one buffer over
// many rows (a 100k-row listing).
void AppendEndpoint(const v1::Connection& c, const v1::Endpoint& e, std::string* out);
void AppendOwners(const v1::Connection& c, std::string* out);
void AppendTcpInfo(const v1::Connection& c, std::string* out);

}  // namespace tcbscope

#endif  // TCBSCOPE_CLIENT_RENDER_CONNECTION_TEXT_H_
