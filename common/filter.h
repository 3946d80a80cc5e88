// The ss filter language: parse once, evaluate on many connections.
//
// Grammar and meaning follow iproute2's ss so that a filter that works after
// `ss -tan` works after `tcbscope list`:
//   state S / exclude S      S a state name or group (all, connected,
//                            synchronized, bucket, big); only before the
//                            rest of the filter, as in ss
//   sport|dport [OP] [:]PORT
//   src|dst ADDR[/PLEN][:PORT]   (also `src :PORT`, `src [v6]:PORT`, `*`)
//   and/or/not, && || !, parentheses, juxtaposition as `and`; as in ss,
//   and, or and juxtaposition have one precedence, left to right
//   OP: = == != < <= > >= eq neq ne lt le gt ge
//
// Thread-safety: a parsed Filter is immutable; Matches() may be called from
// any number of threads at once.
#ifndef TCBSCOPE_COMMON_FILTER_H_
#define TCBSCOPE_COMMON_FILTER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/tcp_state.h"
#include "tcbscope/v1/inspector.pb.h"

namespace tcbscope {

// Bounds that keep a hostile filter from costing unbounded time or memory.
struct FilterLimits {
  size_t max_length = 4096;  // bytes of filter text
  int max_depth = 32;        // nesting of parentheses and `not`
  int max_terms = 256;       // leaf expressions
};

class FilterNode;  // the AST, defined in filter.cc

class Filter {
 public:
  // An empty filter: matches everything, names no state.
  Filter();
  ~Filter();
  Filter(Filter&&) noexcept;
  Filter& operator=(Filter&&) noexcept;

  // Parses `text`. On error returns InvalidArgument whose message is one line
  // naming the column (1-based) and what was expected, e.g.
  //   "filter: column 7: expected a port number after 'dport =', got 'x'".
  static absl::StatusOr<Filter> Parse(absl::string_view text, const FilterLimits& limits = {});

  // The states to ask the kernel for. `defaults` is what applies when the
  // filter names no state (ss: connected; -l: listening; -a: all). As in ss,
  // state/exclude words replace the defaults entirely: the first one starts
  // from no state (`state`) or every state (`exclude`), the rest add or remove.
  StateMask States(StateMask defaults) const;

  // True when the connection satisfies the non-state part of the filter.
  // The state part is applied by the caller via States() (the kernel does it).
  bool Matches(const v1::Connection& c) const;

  // True when the filter has no address/port expression.
  bool MatchesEverything() const;

  // A normalised, fully parenthesised rendering, for logs and tests.
  std::string DebugString() const;

 private:
  std::unique_ptr<FilterNode> root_;  // null: no address/port condition
  bool saw_states_ = false;
  StateMask state_set_ = 0;  // the states the state/exclude words select
};

}  // namespace tcbscope

#endif  // TCBSCOPE_COMMON_FILTER_H_
