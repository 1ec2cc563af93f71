// Monitoring definitions as the API takes them: checks, handlers and
// silences (Sensu's vocabulary; issue 7), parsed and validated from JSON and
// rendered back, plus silence matching and handler filters. Pure, no I/O.
//
// Parsing reports every bad field, not just the first: an Error with code
// 422, message "<what> is not valid" and one FieldError per field ("/interval":
// ["must be a whole number of seconds > 0"]). Absent and null fields take
// their defaults.
//
// Unknown fields are refused ("unknown field (expected ...)"). Sensu Go's
// API refuses them too for its typed fields, and a typo such as "intervall"
// or "occurences" that silently kept the default would leave a check
// alerting differently from what its author wrote. Sensu Classic's custom
// check attributes (passed on to handlers) go in "annotations", a
// string -> string object, as in Sensu Go's metadata.annotations.
//
// Names (check, handler) are 1-64 characters of [A-Za-z0-9_.-] (Sensu Go's
// rule): they appear in URLs, silence ids and, through metric_node(), in
// metric paths. Subscriptions are 1-64 characters of [A-Za-z0-9_.:-], or "*"
// for every agent (Sensu Go's per-entity "entity:<name>" has a ':').
// Durations are whole seconds, 1..kMaxSeconds (31 days).
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/result.h"
#include "monitor/plugin_output.h"

namespace stele::monitor {

inline constexpr int64_t kMaxSeconds = 31 * 24 * 3600;

struct CheckSpec {
  std::string name;
  std::string command;                     // run with /bin/sh -c; may hold {{tokens}} with proxy
  int64_t interval = 60;                   // s
  int64_t timeout = 10;                    // s; may exceed interval (a run is then skipped)
  std::vector<std::string> subscriptions;  // agents whose --subscriptions hold one; "*" = all
  bool round_robin = false;                // one subscribed agent per interval, not all
  std::optional<int64_t> ttl;              // s, > interval: no result for this long is a failure
  CheckStatus ttl_status = CheckStatus::kWarning;  // status of that failure (Sensu: 1)
  std::vector<std::string> handlers;
  int64_t occurrences = 1;                 // alert after this many failing results in a row
  std::optional<std::string> proxy;        // canonical app id: run once per task of the app
  double low_flap_threshold = 5;           // % (see check_state.h)
  double high_flap_threshold = 20;         // %
  std::map<std::string, std::string> annotations;  // passed on to handlers

  friend bool operator==(const CheckSpec&, const CheckSpec&) = default;
};

// Errors: see the header comment. Subscriptions may be empty only with proxy
// (a proxy check runs for the app's tasks, not on subscribed agents);
// {{tokens}} in command are checked by check_command_tokens().
Result<CheckSpec> parse_check(const Json& j);
void to_json(Json& j, const CheckSpec& c);

// Handler filters, after Sensu's built-ins.
struct HandlerFilter {
  enum class Kind : uint8_t { kIsIncident, kNotSilenced, kOccurrencesAtLeast };
  Kind kind = Kind::kIsIncident;
  int64_t n = 0;  // kOccurrencesAtLeast

  friend bool operator==(const HandlerFilter&, const HandlerFilter&) = default;
};
// "is_incident", "not_silenced", "occurrences >= N" (N >= 1; spaces around
// ">=" optional). Errors name the text.
Result<HandlerFilter> parse_filter(std::string_view text);
std::string filter_text(const HandlerFilter& f);  // canonical: "occurrences >= 3"

struct HandlerSpec {
  enum class Type : uint8_t { kPipe, kHttp };
  std::string name;
  Type type = Type::kPipe;
  std::string command;  // pipe: /bin/sh -c, the event JSON on stdin
  std::string url;      // http: http:// or https://, the event JSON POSTed
  std::vector<HandlerFilter> filters;  // all must pass
  int64_t timeout = 10;                // s, per attempt

  friend bool operator==(const HandlerSpec&, const HandlerSpec&) = default;
};
Result<HandlerSpec> parse_handler(const Json& j);
void to_json(Json& j, const HandlerSpec& h);

// What the filters look at, for one check state change.
struct FilterInput {
  CheckStatus status = CheckStatus::kOk;
  CheckStatus previous = CheckStatus::kOk;
  // Failing results in a row; for a resolution, the length of the failing
  // run it ends (Sensu Go's occurrences_watermark).
  int64_t occurrences = 0;
  bool silenced = false;
};
// Sensu's semantics: is_incident passes non-OK results and resolutions
// (OK after non-OK); not_silenced passes unsilenced ones; occurrences >= N
// compares FilterInput::occurrences.
bool filters_pass(const std::vector<HandlerFilter>& filters, const FilterInput& in);

// A silence (Sensu's "silenced entry"): mutes handlers for matching check
// states; the states are still recorded.
struct Silence {
  std::string subscription = "*";  // glob ('*' any run of characters)
  std::string check = "*";         // glob
  std::optional<int64_t> expire{}; // s after `begin`; none = until deleted
  bool expire_on_resolve = false;  // deleted when a matching check resolves
  std::string reason{};
  std::string creator{};
  int64_t begin = 0;               // unix s when it was created (set by the server; 0 = unset)

  friend bool operator==(const Silence&, const Silence&) = default;
};
// "subscription:check", Sensu's silence id ("*:check_disk", "web:*").
std::string silence_id(const Silence& s);
// Needs subscription or check (or both); each is a subscription / check name
// that may hold '*' wildcards. "id" is accepted and ignored (it is derived).
Result<Silence> parse_silence(const Json& j);
void to_json(Json& j, const Silence& s);
// True once `expire` seconds have passed since `begin`.
bool silence_expired(const Silence& s, int64_t now_s);

// True when `s` mutes check `check` on an entity with these subscriptions
// (give agents' and tasks' entities their own "entity:<name>" subscription
// to allow silencing one entity, as Sensu Go does).
bool silence_matches(const Silence& s, const std::vector<std::string>& entity_subscriptions,
                     std::string_view check);

// '*' matches any run of characters (also none); everything else itself.
bool wildcard_match(std::string_view pattern, std::string_view text);

}  // namespace stele::monitor
