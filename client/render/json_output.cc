#include "client/render/json_output.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"

namespace tcbscope {

absl::Status PrintJson(const google::protobuf::Message& message, FILE* out) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string json;
  auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) return absl::InternalError(absl::StrCat("JSON output: ", status.ToString()));
  json.push_back('\n');
  if (fwrite(json.data(), 1, json.size(), out) != json.size()) return absl::UnavailableError("write failed");
  return absl::OkStatus();
}

}  // namespace tcbscope
