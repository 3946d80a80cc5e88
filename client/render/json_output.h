// JSON output: the proto's own JSON mapping (protobuf json_util), field names
// as in the .proto, one document per command.
#ifndef TCBSCOPE_CLIENT_RENDER_JSON_OUTPUT_H_
#define TCBSCOPE_CLIENT_RENDER_JSON_OUTPUT_H_

#include <cstdio>

#include "absl/status/status.h"
#include "google/protobuf/message.h"

namespace tcbscope {

// Writes `message` as one JSON document and a newline.
absl::Status PrintJson(const google::protobuf::Message& message, FILE* out);

}  // namespace tcbscope

#endif  // TCBSCOPE_CLIENT_RENDER_JSON_OUTPUT_H_
