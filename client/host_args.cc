#include "client/host_args.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/agent_client.h"

namespace tcbscope {

bool IsFilterWord(const std::string& word) {
  if (word.empty()) return false;
  if (word[0] == '(' || word[0] == '!' || word[0] == ')') return true;
  std::string w = absl::AsciiStrToLower(word);
  // "sport=:22" and similar glued forms start with the keyword.
  for (const char* kw : {"state", "exclude", "excl", "sport", "dport", "src", "dst", "netns", "not", "and", "or", "&&", "||"}) {
    const std::string k(kw);
    if (w == k) return true;
    if (w.size() > k.size() && w.compare(0, k.size(), k) == 0 && !absl::ascii_isalnum(w[k.size()]) &&
        w[k.size()] != '.' && w[k.size()] != '-') {
      return true;
    }
  }
  return false;
}

absl::StatusOr<std::vector<HostPort>> ParseHosts(const std::vector<std::string>& args) {
  std::vector<HostPort> hosts;
  for (const std::string& a : args) {
    absl::StatusOr<HostPort> hp = ParseHostPort(a, kDefaultAgentPort);
    if (!hp.ok()) return hp.status();
    hosts.push_back(*hp);
  }
  if (hosts.empty()) return absl::InvalidArgumentError("no HOST given (e.g. localhost or 198.51.100.2:7411)");
  return hosts;
}

absl::StatusOr<HostsAndFilter> SplitHostsAndFilter(const std::vector<std::string>& args) {
  HostsAndFilter out;
  size_t i = 0;
  while (i < args.size() && !IsFilterWord(args[i])) ++i;
  absl::StatusOr<std::vector<HostPort>> hosts =
      ParseHosts(std::vector<std::string>(args.begin(), args.begin() + static_cast<long>(i)));
  if (!hosts.ok()) return hosts.status();
  out.hosts = *std::move(hosts);
  std::vector<std::string> rest(args.begin() + static_cast<long>(i), args.end());
  out.filter = absl::StrJoin(rest, " ");
  absl::StatusOr<Filter> parsed = Filter::Parse(out.filter);
  if (!parsed.ok()) return parsed.status();
  out.parsed_filter = *std::move(parsed);
  return out;
}

}  // namespace tcbscope
