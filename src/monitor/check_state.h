// Check states per (entity, check): the last result, occurrences, the
// 21-entry status history, flap detection, incident/resolution
// classification and ttl expiry. Pure logic and an in-memory tracker; no
// I/O, no clock (callers pass the time).
//
// Classification (Sensu's model, with the check's `occurrences` threshold N):
// - A result's status is compared with the previous result's (OK before the
//   first result, as Sensu reads an empty history).
// - Incident: a non-OK result once N non-OK results came in a row, when no
//   incident is open or the open one had another status -- so OK -> WARNING
//   is one incident, and a later WARNING -> CRITICAL (or back) is another
//   the handlers see; a repeat of the same failing status is none.
// - Resolution: an OK result while an incident is open. A failure that
//   never reached N results is no incident, so its recovery is no resolution.
// - Recorded::is_incident()/is_resolution() are Sensu's per-result
//   predicates (status != 0; OK after non-OK), for the `is_incident` filter.
//
// Flapping, Nagios' weighted percent state change over the history (oldest
// first, at most kHistorySize = 21 statuses): each of the up to 20
// transitions between neighbours counts when the status differs, weighted
// linearly from 0.8 (oldest transition) to 1.2 (newest); the sum over 20 is
// the percentage (so a history that changes every time is 100%). A shorter
// history weighs its transitions as the newest ones. Flapping starts when
// the percentage exceeds the high threshold and stops when it drops below
// the low one (defaults 20% and 5%, per check). A flapping check's state is
// "flapping" whatever its status. Incidents and resolutions are classified
// the same while flapping; whether to notify then is the caller's choice.
//
// TTL: a check with a ttl whose last result is older than ttl gets a
// synthetic result (CheckSpec::ttl_status, WARNING by default as in Sensu),
// output "Last check execution was N seconds ago"; then again every ttl
// while no result arrives.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/json.h"
#include "common/result.h"
#include "monitor/check_spec.h"
#include "monitor/plugin_output.h"

namespace stele::monitor {

inline constexpr size_t kHistorySize = 21;

struct CheckResult {
  std::string name;  // the check's
  CheckStatus status = CheckStatus::kUnknown;
  std::string output;  // PluginOutput::text(): first line and long text, no perfdata
  int64_t executed = 0;  // unix seconds when the run started
  std::vector<PerfValue> perfdata;

  friend bool operator==(const CheckResult&, const CheckResult&) = default;
};

// What record() needs from the check's definition.
struct StatePolicy {
  int64_t occurrences = 1;
  double low_flap_threshold = 5, high_flap_threshold = 20;
  std::optional<int64_t> ttl;  // s
  CheckStatus ttl_status = CheckStatus::kWarning;
};
StatePolicy policy_of(const CheckSpec& c);

struct CheckState {
  std::string entity;
  CheckResult check;                  // the last result
  int64_t occurrences = 0;            // results in a row with check.status (Sensu)
  int64_t occurrences_watermark = 0;  // non-OK results in a row; on the OK ending them, that run's length
  std::vector<CheckStatus> history;   // oldest first, at most kHistorySize
  bool flapping = false;
  double percent_state_change = 0;
  // An incident was announced (with this status) and not yet resolved.
  std::optional<CheckStatus> open_incident;

  // "passing" (OK), "failing" (not OK), or "flapping".
  const char* state() const;
};

enum class Change : uint8_t { kNone, kIncident, kResolution };
const char* change_name(Change c);  // "none", "incident", "resolution"

// What one result did to a state.
struct Recorded {
  Change change = Change::kNone;
  bool flapping_started = false;
  bool flapping_stopped = false;
  CheckStatus status = CheckStatus::kOk;
  CheckStatus previous = CheckStatus::kOk;  // OK for the first result
  int64_t occurrences_watermark = 0;

  bool is_incident() const { return status != CheckStatus::kOk; }
  bool is_resolution() const { return status == CheckStatus::kOk && previous != CheckStatus::kOk; }
  FilterInput filter_input(bool silenced) const { return {status, previous, occurrences_watermark, silenced}; }
};

// Weighted percent state change of `history` (oldest first), 0..100.
double percent_state_change(const std::vector<CheckStatus>& history);

// Applies one result to `s` (whose entity is set by the caller).
Recorded record_result(CheckState& s, CheckResult r, const StatePolicy& p);

// {"entity", "check": {"name", "status", "output", "executed", "perfdata"},
//  "occurrences", "history": [statuses], "state"}. Perfdata items are
// {"label", "value" (null for U), "uom"?, "warn"?, "crit"?, "min"?, "max"?},
// ranges as format_range() text; absent parts are left out.
void to_json(Json& j, const CheckState& s);
// A result alone, the "check" object above: {"name", "status", "output",
// "executed", "perfdata"} (how agents send results to the server).
void to_json(Json& j, const CheckResult& r);
Result<CheckResult> parse_check_result(const Json& j);
void to_json(Json& j, const PerfValue& p);
// Reads to_json's output back (from the store). What it does not carry is
// derived: the percentage from the history, the watermark from the history's
// failing tail, and a failing state counts as an open incident (so a restart
// does not announce it again).
Result<CheckState> parse_check_state(const Json& j);

// The states of every (entity, check). Not thread-safe: one owner (the
// leader's monitor strand). find() answers nullptr for unknown pairs.
class CheckStateTracker {
 public:
  Recorded record(const std::string& entity, CheckResult r, const StatePolicy& p, int64_t now_ms);

  // Loads a stored state; its ttl clock starts at now_ms.
  void restore(CheckState s, const StatePolicy& p, int64_t now_ms);

  const CheckState* find(const std::string& entity, const std::string& check) const;
  // Every state, ordered by (entity, check).
  std::vector<const CheckState*> states() const;

  bool remove(const std::string& entity, const std::string& check);
  size_t remove_check(const std::string& check);    // a deleted check definition
  size_t remove_entity(const std::string& entity);  // a gone task or agent

  struct TtlExpiry {
    std::string entity;
    Recorded recorded;
    const CheckState* state;  // valid until the tracker changes
  };
  // Records a synthetic result for every state whose ttl passed without a
  // result (already recorded: treat each like record()'s answer). Each
  // expiry is reported once; the next comes a ttl later if still silent.
  std::vector<TtlExpiry> expire_ttl(int64_t now_ms);

 private:
  struct Entry {
    CheckState state;
    StatePolicy policy;
    int64_t last_result_ms = 0;  // last real result
    int64_t ttl_deadline_ms = 0;  // 0 = no ttl
  };
  using Key = std::pair<std::string, std::string>;
  void arm_ttl(Entry& e, int64_t now_ms);
  std::map<Key, Entry> entries_;
};

}  // namespace stele::monitor
