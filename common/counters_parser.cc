#include "common/counters_parser.h"

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace tcbscope {
namespace {

constexpr size_t kMaxInput = 1 << 20;
constexpr int kMaxGroups = 64;
constexpr size_t kMaxNames = 1024;

v1::CounterGroup* FindOrAddGroup(absl::string_view name, v1::Counters* out) {
  for (auto& g : *out->mutable_groups()) {
    if (g.name() == name) return &g;
  }
  if (out->groups_size() >= kMaxGroups) return nullptr;
  v1::CounterGroup* g = out->add_groups();
  g->set_name(std::string(name));
  return g;
}

}  // namespace

absl::Status ParseCounters(absl::string_view text, v1::Counters* out) {
  if (text.size() > kMaxInput) return absl::InvalidArgumentError("counters: input larger than 1 MiB");
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n', absl::SkipWhitespace());
  for (size_t i = 0; i < lines.size(); i += 2) {
    const int lineno = static_cast<int>(i) + 1;
    if (i + 1 >= lines.size()) {
      return absl::InvalidArgumentError(absl::StrCat("counters: line ", lineno, ": header without a value line"));
    }
    absl::string_view header = lines[i], values = lines[i + 1];
    const size_t hc = header.find(':'), vc = values.find(':');
    if (hc == absl::string_view::npos || hc == 0 || vc == absl::string_view::npos ||
        header.substr(0, hc) != values.substr(0, vc)) {
      return absl::InvalidArgumentError(
          absl::StrCat("counters: line ", lineno + 1, ": prefix does not match the header's"));
    }
    const absl::string_view group = header.substr(0, hc);
    std::vector<absl::string_view> names =
        absl::StrSplit(header.substr(hc + 1), ' ', absl::SkipWhitespace());
    std::vector<absl::string_view> nums =
        absl::StrSplit(values.substr(vc + 1), ' ', absl::SkipWhitespace());
    if (names.size() != nums.size()) {
      return absl::InvalidArgumentError(absl::StrCat("counters: line ", lineno + 1, ": ", nums.size(),
                                                     " values for ", names.size(), " names"));
    }
    if (names.size() > kMaxNames) {
      return absl::InvalidArgumentError(absl::StrCat("counters: line ", lineno, ": too many names"));
    }
    v1::CounterGroup* g = FindOrAddGroup(group, out);
    if (g == nullptr) return absl::InvalidArgumentError("counters: too many groups");
    auto* map = g->mutable_values();
    for (size_t k = 0; k < names.size(); ++k) {
      int64_t v = 0;
      if (!absl::SimpleAtoi(nums[k], &v)) {
        // Counters are unsigned 64-bit in the kernel; values past INT64_MAX
        // do not occur in practice but must not be misreported.
        uint64_t u = 0;
        if (!absl::SimpleAtoi(nums[k], &u)) {
          return absl::InvalidArgumentError(absl::StrCat("counters: line ", lineno + 1, ": '", nums[k],
                                                         "' is not an integer"));
        }
        v = static_cast<int64_t>(u);
      }
      (*map)[std::string(names[k])] = v;
    }
  }
  return absl::OkStatus();
}

}  // namespace tcbscope
