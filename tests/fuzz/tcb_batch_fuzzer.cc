// libFuzzer target: TcbBatch::Decode against protobuf's parser and TcbOf.
// Any input: Decode must not crash, hang or read out of bounds; an input
// protobuf accepts as a ConnectionBatch, Decode must accept and read alike
// (common/tcb_batch.h). A disagreement aborts, with what differed.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/tcb_batch.h"
#include "google/protobuf/stubs/logging.h"
#include "tests/common/tcb_difference.h"

namespace {

[[noreturn]] void Disagree(const std::string& what) {
  std::fprintf(stderr, "TcbBatch::Decode disagrees with protobuf: %s\n", what.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Protobuf logs each string it refuses as invalid UTF-8; that is expected here.
  static const bool quiet = (google::protobuf::SetLogHandler(nullptr), true);
  (void)quiet;
  // One batch for every input, as a stream reuses one.
  static auto* batch = new tcbscope::TcbBatch;
  const absl::Status ours = batch->Decode(absl::string_view(reinterpret_cast<const char*>(data), size));
  tcbscope::v1::ConnectionBatch parsed;
  if (!parsed.ParseFromArray(data, static_cast<int>(size))) return 0;
  if (!ours.ok()) Disagree(std::string(ours.message()));
  if (batch->tcbs().size() != static_cast<size_t>(parsed.connections_size())) Disagree("the number of connections");
  for (int i = 0; i < parsed.connections_size(); ++i) {
    const std::string d =
        tcbscope::testing::TcbDifference(batch->tcbs()[static_cast<size_t>(i)], tcbscope::TcbOf(parsed.connections(i)));
    if (!d.empty()) Disagree("connection " + std::to_string(i) + ", " + d);
  }
  if (batch->captured_at().seconds() != parsed.captured_at().seconds() ||
      batch->captured_at().nanos() != parsed.captured_at().nanos() ||
      batch->dump_interrupted() != parsed.dump_interrupted() || batch->last() != parsed.last() ||
      batch->total() != parsed.total()) {
    Disagree("the batch's header");
  }
  return 0;
}
