#include "client/client_config.h"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace tcbscope {
namespace {

constexpr uint16_t kDefaultAgentPort = 7411;
constexpr size_t kMaxConfigBytes = 1 << 20;

std::string Resolve(const std::string& dir, absl::string_view path) {
  if (path.empty() || path[0] == '/' || dir.empty()) return std::string(path);
  return absl::StrCat(dir, "/", path);
}

bool ValidHostName(absl::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '-' && c != '.' && c != '_') return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<ClientConfig> ParseClientConfig(absl::string_view text, const std::string& source,
                                               const std::string& dir) {
  ClientConfig config;
  config.source = source;
  NamedHost* host = nullptr;  // the section being read; null: top level
  std::string host_name;
  int line_no = 0;
  auto error = [&](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(source, ":", line_no, ": ", what));
  };
  auto finish_host = [&]() -> absl::Status {
    if (host != nullptr && host->address.host.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": [host ", host_name, "] has no address (address = HOST:PORT)"));
    }
    return absl::OkStatus();
  };
  for (absl::string_view raw : absl::StrSplit(text, '\n')) {
    ++line_no;
    absl::string_view line = raw;
    if (size_t hash = line.find('#'); hash != absl::string_view::npos) line = line.substr(0, hash);
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    if (line.front() == '[') {
      if (line.back() != ']') return error("a section is written [host NAME]");
      absl::string_view inner = absl::StripAsciiWhitespace(line.substr(1, line.size() - 2));
      if (!absl::ConsumePrefix(&inner, "host ")) return error("the only section is [host NAME]");
      inner = absl::StripAsciiWhitespace(inner);
      if (!ValidHostName(inner)) return error(absl::StrCat("'", inner, "' is not a host name"));
      if (absl::Status s = finish_host(); !s.ok()) return s;
      host_name = std::string(inner);
      if (config.hosts.contains(host_name)) return error(absl::StrCat("[host ", host_name, "] appears twice"));
      host = &config.hosts[host_name];
      continue;
    }
    const size_t eq = line.find('=');
    if (eq == absl::string_view::npos) return error("expected KEY = VALUE");
    const std::string key = absl::AsciiStrToLower(absl::StripAsciiWhitespace(line.substr(0, eq)));
    const absl::string_view value = absl::StripAsciiWhitespace(line.substr(eq + 1));
    if (value.empty()) return error(absl::StrCat("'", key, "' has no value"));
    Credentials& creds = host != nullptr ? host->credentials : config.defaults;
    if (key == "tls-ca") {
      creds.tls_ca = Resolve(dir, value);
    } else if (key == "tls-cert") {
      creds.tls_cert = Resolve(dir, value);
    } else if (key == "tls-key") {
      creds.tls_key = Resolve(dir, value);
    } else if (key == "token-file") {
      creds.token_file = Resolve(dir, value);
    } else if (key == "address") {
      if (host == nullptr) return error("'address' belongs in a [host NAME] section");
      absl::StatusOr<HostPort> hp = ParseHostPort(value, kDefaultAgentPort);
      if (!hp.ok()) return error(absl::StrCat("address: ", hp.status().message()));
      host->address = *hp;
    } else if (key == "timeout") {
      if (host != nullptr) return error("'timeout' is a top-level key (it applies to every host)");
      absl::Duration d;
      if (!absl::ParseDuration(value, &d) || d <= absl::ZeroDuration()) {
        return error(absl::StrCat("timeout: '", value, "' is not a positive duration (e.g. 3s)"));
      }
      config.timeout = d;
    } else {
      return error(absl::StrCat("unknown key '", key, "' (address, tls-ca, tls-cert, tls-key, token-file, timeout)"));
    }
  }
  if (absl::Status s = finish_host(); !s.ok()) return s;
  return config;
}

std::string DefaultClientConfigPath() {
  if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg != nullptr && xdg[0] == '/') {
    return absl::StrCat(xdg, "/tcbscope/config");
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && home[0] != '\0') {
    return absl::StrCat(home, "/.config/tcbscope/config");
  }
  return "";
}

absl::StatusOr<std::optional<ClientConfig>> LoadClientConfig(const std::string& path, bool named) {
  if (path.empty()) return std::optional<ClientConfig>();
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (!named) return std::optional<ClientConfig>();
    return absl::InvalidArgumentError(absl::StrCat("config ", path, ": cannot be read"));
  }
  std::string text(kMaxConfigBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxConfigBytes) {
    return absl::InvalidArgumentError(absl::StrCat("config ", path, ": larger than 1 MiB"));
  }
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
  absl::StatusOr<ClientConfig> c = ParseClientConfig(text, path, dir);
  if (!c.ok()) return c.status();
  return std::optional<ClientConfig>(*std::move(c));
}

}  // namespace tcbscope
