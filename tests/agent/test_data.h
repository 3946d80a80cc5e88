// Reads a recorded file from tests/data (ss -D dumps made by
// tests/data/make_recordings.py); "" when it cannot be read.
#ifndef TCBSCOPE_TESTS_AGENT_TEST_DATA_H_
#define TCBSCOPE_TESTS_AGENT_TEST_DATA_H_

#include <fstream>
#include <sstream>
#include <string>

namespace tcbscope::testing {

inline std::string ReadTestData(const std::string& name) {
  std::ifstream in(std::string(TCBSCOPE_SOURCE_DIR) + "/tests/data/" + name, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace tcbscope::testing

#endif  // TCBSCOPE_TESTS_AGENT_TEST_DATA_H_
