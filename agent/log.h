// Minimal stderr logging for the agent: one line per event, UTC timestamp,
// level. Thread-safe (a single write(2) per line).
#ifndef TCBSCOPE_AGENT_LOG_H_
#define TCBSCOPE_AGENT_LOG_H_

#include "absl/strings/string_view.h"

namespace tcbscope {

enum class LogLevel { kInfo, kWarning, kError };

void Log(LogLevel level, absl::string_view message);

}  // namespace tcbscope

#endif  // TCBSCOPE_AGENT_LOG_H_
