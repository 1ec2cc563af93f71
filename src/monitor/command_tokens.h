// {{token}} substitution in proxy check commands: a check with `proxy` runs
// once per task of that app, e.g.
//   check_http -H {{host}} -p {{port0}} -u /health
//
// Tokens: {{host}} (the task's agent address), {{port}} = {{port0}},
// {{port1}}, ... (the task's assigned ports, in order), {{task}} (task id),
// {{app}} (app id, "/shop/web"), {{entity}} (the task's entity). Spaces
// inside the braces are allowed ({{ host }}). A "{{" not followed by a name
// and "}}" is left alone, so shell and awk text such as `{{print $1}}` is
// not taken for a token. Values are substituted as they are: host, ids and
// port numbers hold no shell metacharacters (ids are checked by the core).
// Pure functions, thread-safe.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace stele::monitor {

struct ProxyTarget {
  std::string host;
  std::vector<int> ports;
  std::string task;
  std::string app;
  std::string entity;
};

// Definition time: errors for an unknown token ("command: unknown token
// {{hots}} at 12 (expected host, port, port0..portN, task, app, entity)"), and
// for any token when the check has no proxy (nothing to substitute).
Result<void> check_command_tokens(std::string_view command, bool has_proxy);

// Run time: the command with every token replaced. Errors: an unknown token,
// or a port the task does not have ("{{port2}}: the task has 1 port").
Result<std::string> substitute_tokens(std::string_view command, const ProxyTarget& t);

}  // namespace stele::monitor
