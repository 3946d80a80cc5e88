#include "agent/bearer_token.h"

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace tcbscope {

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  // Walk the whole of the longer input whatever the contents; a length
  // difference is folded into the result, not returned early.
  const size_t n = a.size() > b.size() ? a.size() : b.size();
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

absl::StatusOr<BearerToken> BearerToken::FromFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("--token-file ", path, ": cannot be read"));
  std::stringstream ss;
  ss << in.rdbuf();
  std::string token(absl::StripAsciiWhitespace(ss.str()));
  if (token.size() < 16) {
    return absl::InvalidArgumentError(
        absl::StrCat("--token-file ", path, ": the token must be at least 16 characters"));
  }
  return BearerToken(std::move(token));
}

bool BearerToken::Accepts(absl::string_view authorization) const {
  constexpr absl::string_view kScheme = "Bearer ";
  if (!absl::StartsWith(authorization, kScheme)) return false;
  return ConstantTimeEquals(authorization.substr(kScheme.size()), token_);
}

}  // namespace tcbscope
