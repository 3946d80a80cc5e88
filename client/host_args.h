// Positional arguments shared by the commands: HOST... [FILTER...].
#ifndef TCBSCOPE_CLIENT_HOST_ARGS_H_
#define TCBSCOPE_CLIENT_HOST_ARGS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/filter.h"
#include "common/ip_address.h"

namespace tcbscope {

struct HostsAndFilter {
  std::vector<HostPort> hosts;
  std::string filter;     // the filter words joined by single spaces
  Filter parsed_filter;   // the same, parsed
};

// Leading arguments are hosts until the first word that starts a filter
// (state, exclude, excl, sport, dport, src, dst, netns, not, '!', '(' ...); the rest
// is the filter, parsed here so that a typo costs no round trip and gets the
// same one-line message whatever the hosts. InvalidArgument when no host is
// given, a host is malformed, or the filter does not parse.
absl::StatusOr<HostsAndFilter> SplitHostsAndFilter(const std::vector<std::string>& args);

// Every argument as HOST[:PORT] (default port 7411). InvalidArgument naming
// the first bad one.
absl::StatusOr<std::vector<HostPort>> ParseHosts(const std::vector<std::string>& args);

// True when `word` can only begin a filter expression.
bool IsFilterWord(const std::string& word);

}  // namespace tcbscope

#endif  // TCBSCOPE_CLIENT_HOST_ARGS_H_
