// bare_dump: the kernel's own cost of a full TCP socket dump — the same
// sock_diag request the agent makes (with tcp_info and the other
// extensions), every message received and thrown away. bench/run compares
// the agent's CPU per ListConnections with this process's CPU per dump.
//
//   bare_dump [--reps N] [--per-family]   prints the median CPU seconds per dump
//
// --per-family asks for IPv4 and IPv6 in two dumps, as ss does (the agent
// gets both from one walk of the kernel's tables).
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "agent/kernel/sock_diag_reader.h"
#include "CLI/CLI.hpp"

namespace {

double CpuSeconds() {
  rusage r;
  getrusage(RUSAGE_SELF, &r);
  return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
         static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 7;
  bool info = true;
  bool per_family = false;
  CLI::App app{"bare_dump: CPU of a sock_diag dump that discards the data"};
  app.add_option("--reps", reps, "dumps to time")->capture_default_str();
  app.add_flag("!--no-info", info, "without tcp_info and the other extensions");
  app.add_flag("--per-family", per_family, "one dump per family, as ss asks");
  CLI11_PARSE(app, argc, argv);
  tcbscope::kernel::SockDiagReader reader;
  if (per_family) reader.AskPerFamily();
  tcbscope::kernel::DumpRequest req;
  req.tcp_info = info;
  std::vector<double> cpu;
  uint64_t sockets = 0;
  for (int i = 0; i < reps; ++i) {
    const double before = CpuSeconds();
    absl::StatusOr<tcbscope::kernel::DumpResult> r = reader.Dump(req, [](const nlmsghdr*) { return absl::OkStatus(); });
    if (!r.ok()) {
      fprintf(stderr, "bare_dump: %s\n", std::string(r.status().message()).c_str());
      return 1;
    }
    sockets = r->sockets;
    cpu.push_back(CpuSeconds() - before);
  }
  std::sort(cpu.begin(), cpu.end());
  printf("%.4f %llu\n", cpu[cpu.size() / 2], static_cast<unsigned long long>(sockets));
  return 0;
}
