// Parser for the kernel's counter files /proc/net/snmp and /proc/net/netstat.
//
// Both files are pairs of lines with the same prefix: a header line of names
// and a line of values, e.g.
//   Tcp: RtoAlgorithm RtoMin ... InErrs
//   Tcp: 1 200 ... 0
// Pure text in, groups out: no file access here.
#ifndef TCBSCOPE_COMMON_COUNTERS_PARSER_H_
#define TCBSCOPE_COMMON_COUNTERS_PARSER_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "tcbscope/v1/inspector.pb.h"

namespace tcbscope {

// Parses `text` and merges its groups into `out` (a group seen again, as Ip in
// both files, gets its values merged). InvalidArgument naming the line when a
// header has no value line, prefixes differ, the counts differ, a value is not
// an integer, or the input exceeds 1 MiB / 64 groups / 1024 names per group.
absl::Status ParseCounters(absl::string_view text, v1::Counters* out);

}  // namespace tcbscope

#endif  // TCBSCOPE_COMMON_COUNTERS_PARSER_H_
