// Replays every file of a corpus directory through LLVMFuzzerTestOneInput,
// for builds without libFuzzer: a crash (or a sanitizer report) fails the
// process, and an empty corpus fails too, so the test cannot pass vacuously.
#include <dirent.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  DIR* dir = opendir(argv[1]);
  if (dir == nullptr) {
    fprintf(stderr, "%s: cannot open\n", argv[1]);
    return 2;
  }
  int n = 0;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream in(std::string(argv[1]) + "/" + e->d_name, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string data = ss.str();
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(data.data()), data.size());
    ++n;
  }
  closedir(dir);
  printf("corpus: %d inputs replayed\n", n);
  return n > 0 ? 0 : 1;
}
