// The CLI's configuration file: default credentials and named hosts, so that
// `tcbscope list web1 db1` needs no flags. Found at $TCBSCOPE_CONFIG, else
// $XDG_CONFIG_HOME/tcbscope/config, else ~/.config/tcbscope/config, or given
// with --config.
//
//   # top-level keys are the defaults for every host
//   tls-ca = /etc/tcbscope/ca.pem
//   timeout = 5s
//
//   [host web1]
//   address = 198.51.100.1:7411
//   token-file = web1.token        # relative paths: to the file's directory
//
// Keys: address (in a [host NAME] section only), tls-ca, tls-cert, tls-key,
// token-file, timeout (top level only). Precedence, highest first: command
// line, environment, the host's section, the top level.
#ifndef TCBSCOPE_CLIENT_CLIENT_CONFIG_H_
#define TCBSCOPE_CLIENT_CLIENT_CONFIG_H_

#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/ip_address.h"

namespace tcbscope {

struct Credentials {
  std::string tls_ca, tls_cert, tls_key, token_file;  // paths; empty = not set
};

struct NamedHost {
  HostPort address;
  Credentials credentials;
};

struct ClientConfig {
  std::string source;  // the file it came from, for messages
  Credentials defaults;
  std::optional<absl::Duration> timeout;
  absl::flat_hash_map<std::string, NamedHost> hosts;
};

// Parses a configuration's text. `dir` resolves relative paths. On a mistake:
// InvalidArgument "SOURCE:LINE: what is wrong", one line.
absl::StatusOr<ClientConfig> ParseClientConfig(absl::string_view text, const std::string& source,
                                               const std::string& dir);

// Reads the file at `path`, or the default location when `path` is empty.
// A missing default file is no configuration (nullopt); a missing file that
// was named (flag or $TCBSCOPE_CONFIG) is InvalidArgument.
absl::StatusOr<std::optional<ClientConfig>> LoadClientConfig(const std::string& path, bool named);

// Where the configuration is looked for when none is named.
std::string DefaultClientConfigPath();

}  // namespace tcbscope

#endif  // TCBSCOPE_CLIENT_CLIENT_CONFIG_H_
