// Bearer-token check for every call (tcbscope-agent --token-file).
//
// The client sends "authorization: Bearer TOKEN" metadata. The comparison
// takes the same time whatever the token's content, so a caller cannot learn
// the token byte by byte from response times. Immutable after construction;
// safe to share between threads.
#ifndef TCBSCOPE_AGENT_BEARER_TOKEN_H_
#define TCBSCOPE_AGENT_BEARER_TOKEN_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tcbscope {

class BearerToken {
 public:
  // Reads the token from `path` (surrounding whitespace dropped).
  // InvalidArgument if unreadable, empty, or shorter than 16 bytes.
  static absl::StatusOr<BearerToken> FromFile(const std::string& path);
  explicit BearerToken(std::string token) : token_(std::move(token)) {}

  // True when `authorization` (the metadata value) is "Bearer <token>".
  bool Accepts(absl::string_view authorization) const;

 private:
  std::string token_;
};

// Equal contents, in time that depends only on the lengths.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

}  // namespace tcbscope

#endif  // TCBSCOPE_AGENT_BEARER_TOKEN_H_
