// Check state bookkeeping: occurrences, history, flap detection,
// incident/resolution classification, ttl expiry, JSON.
#include "monitor/check_state.h"

#include <algorithm>

namespace stele::monitor {

namespace {

// Weight of transition `d` places before the newest (d = 0 newest).
double transition_weight(size_t d) {
  constexpr double kNewest = 1.2, kOldest = 0.8;
  constexpr double kStep = (kNewest - kOldest) / double(kHistorySize - 2);
  return kNewest - double(d) * kStep;
}

int64_t failing_tail(const std::vector<CheckStatus>& h) {
  int64_t n = 0;
  for (auto it = h.rbegin(); it != h.rend() && *it != CheckStatus::kOk; ++it) ++n;
  return n;
}

void classify(CheckState& s, const StatePolicy& p, Recorded& out) {
  CheckStatus st = s.check.status;
  if (st == CheckStatus::kOk) {
    if (s.open_incident) out.change = Change::kResolution;
    s.open_incident.reset();
    return;
  }
  if (s.occurrences_watermark >= p.occurrences && s.open_incident != st) {
    out.change = Change::kIncident;
    s.open_incident = st;
  }
}

void detect_flapping(CheckState& s, const StatePolicy& p, Recorded& out) {
  s.percent_state_change = percent_state_change(s.history);
  if (!s.flapping && s.percent_state_change > p.high_flap_threshold) {
    s.flapping = true;
    out.flapping_started = true;
  } else if (s.flapping && s.percent_state_change < p.low_flap_threshold) {
    s.flapping = false;
    out.flapping_stopped = true;
  }
}

template <class T>
T read(const Json& j, const char* key) {
  return j.at(key).get<T>();
}

}  // namespace

StatePolicy policy_of(const CheckSpec& c) {
  return StatePolicy{c.occurrences, c.low_flap_threshold, c.high_flap_threshold, c.ttl, c.ttl_status};
}

const char* CheckState::state() const {
  if (flapping) return "flapping";
  return check.status == CheckStatus::kOk ? "passing" : "failing";
}

const char* change_name(Change c) {
  switch (c) {
    case Change::kIncident: return "incident";
    case Change::kResolution: return "resolution";
    case Change::kNone: break;
  }
  return "none";
}

double percent_state_change(const std::vector<CheckStatus>& history) {
  size_t n = std::min(history.size(), kHistorySize);
  double changes = 0;
  for (size_t d = 0; d + 1 < n; ++d) {
    auto newer = history.end() - 1 - static_cast<ptrdiff_t>(d);
    if (*newer != *(newer - 1)) changes += transition_weight(d);
  }
  return changes * 100.0 / double(kHistorySize - 1);
}

Recorded record_result(CheckState& s, CheckResult r, const StatePolicy& p) {
  Recorded out;
  bool first = s.history.empty();
  out.previous = first ? CheckStatus::kOk : s.check.status;
  out.status = r.status;
  s.occurrences = !first && r.status == s.check.status ? s.occurrences + 1 : 1;
  if (r.status != CheckStatus::kOk)
    s.occurrences_watermark = out.previous != CheckStatus::kOk ? s.occurrences_watermark + 1 : 1;
  else if (out.previous == CheckStatus::kOk)
    s.occurrences_watermark = 0;  // an OK that ends a failing run keeps its length
  out.occurrences_watermark = s.occurrences_watermark;
  s.history.push_back(r.status);
  if (s.history.size() > kHistorySize) s.history.erase(s.history.begin());
  s.check = std::move(r);
  classify(s, p, out);
  detect_flapping(s, p, out);
  return out;
}

void to_json(Json& j, const PerfValue& p) {
  j = Json{{"label", p.label}, {"value", p.value ? Json(*p.value) : Json(nullptr)}};
  if (p.uom != Uom::kNone) j["uom"] = std::string(uom_text(p.uom));
  if (p.warn) j["warn"] = format_range(*p.warn);
  if (p.crit) j["crit"] = format_range(*p.crit);
  if (p.min) j["min"] = *p.min;
  if (p.max) j["max"] = *p.max;
}

void to_json(Json& j, const CheckResult& r) {
  j = Json{{"name", r.name},
           {"status", static_cast<int>(r.status)},
           {"output", r.output},
           {"executed", r.executed},
           {"perfdata", r.perfdata}};
}

void to_json(Json& j, const CheckState& s) {
  Json history = Json::array();
  for (CheckStatus h : s.history) history.push_back(static_cast<int>(h));
  j = Json{{"entity", s.entity},
           {"check", s.check},
           {"occurrences", s.occurrences},
           {"history", history},
           {"state", s.state()}};
}

namespace {

Result<PerfValue> parse_perf_json(const Json& j) {
  PerfValue p;
  p.label = read<std::string>(j, "label");
  if (!j.at("value").is_null()) p.value = read<double>(j, "value");
  if (j.contains("uom")) {
    auto u = parse_uom(read<std::string>(j, "uom"));
    if (!u) return fail("perfdata " + p.label + ": unknown uom");
    p.uom = *u;
  }
  for (auto [key, range] : {std::pair{"warn", &p.warn}, std::pair{"crit", &p.crit}}) {
    if (!j.contains(key)) continue;
    auto r = parse_range(read<std::string>(j, key));
    if (!r) return fail("perfdata " + p.label + ": " + r.error().message);
    *range = *r;
  }
  if (j.contains("min")) p.min = read<double>(j, "min");
  if (j.contains("max")) p.max = read<double>(j, "max");
  return p;
}

std::optional<CheckStatus> read_status(const Json& j) {
  return j.is_number_integer() ? status_from_int(j.get<int64_t>()) : std::nullopt;
}

Result<CheckResult> result_fields(const Json& c) {
  CheckResult r;
  r.name = read<std::string>(c, "name");
  auto status = read_status(c.at("status"));
  if (!status) return fail("check.status must be 0..3");
  r.status = *status;
  r.output = read<std::string>(c, "output");
  r.executed = read<int64_t>(c, "executed");
  for (const Json& pj : c.at("perfdata")) {
    auto p = parse_perf_json(pj);
    if (!p) return fail(p.error().message);
    r.perfdata.push_back(std::move(*p));
  }
  return r;
}

Result<CheckState> parse_state_fields(const Json& j) {
  CheckState s;
  s.entity = read<std::string>(j, "entity");
  auto check = result_fields(j.at("check"));
  if (!check) return fail("check state: " + check.error().message);
  s.check = std::move(*check);
  s.occurrences = read<int64_t>(j, "occurrences");
  for (const Json& h : j.at("history")) {
    auto hs = read_status(h);
    if (!hs) return fail("check state: history entries must be 0..3");
    s.history.push_back(*hs);
  }
  if (s.history.size() > kHistorySize) s.history.erase(s.history.begin(), s.history.end() - kHistorySize);
  std::string state = read<std::string>(j, "state");
  if (state != "passing" && state != "failing" && state != "flapping")
    return fail("check state: state must be passing, failing or flapping");
  s.flapping = state == "flapping";
  s.percent_state_change = percent_state_change(s.history);
  if (s.check.status != CheckStatus::kOk) {
    s.occurrences_watermark = std::max(failing_tail(s.history), int64_t(1));
    s.open_incident = s.check.status;
  }
  return s;
}

}  // namespace

Result<CheckResult> parse_check_result(const Json& j) {
  try {
    return result_fields(j);
  } catch (const Json::exception& e) {
    return fail(std::string("check result: ") + e.what());
  }
}

Result<CheckState> parse_check_state(const Json& j) {
  try {
    return parse_state_fields(j);
  } catch (const Json::exception& e) {
    return fail(std::string("check state: ") + e.what());
  }
}

void CheckStateTracker::arm_ttl(Entry& e, int64_t now_ms) {
  e.ttl_deadline_ms = e.policy.ttl ? now_ms + *e.policy.ttl * 1000 : 0;
}

Recorded CheckStateTracker::record(const std::string& entity, CheckResult r, const StatePolicy& p, int64_t now_ms) {
  Entry& e = entries_[Key{entity, r.name}];
  e.state.entity = entity;
  e.policy = p;
  e.last_result_ms = now_ms;
  arm_ttl(e, now_ms);
  return record_result(e.state, std::move(r), p);
}

void CheckStateTracker::restore(CheckState s, const StatePolicy& p, int64_t now_ms) {
  Entry& e = entries_[Key{s.entity, s.check.name}];
  e.state = std::move(s);
  e.policy = p;
  e.last_result_ms = now_ms;
  arm_ttl(e, now_ms);
}

const CheckState* CheckStateTracker::find(const std::string& entity, const std::string& check) const {
  auto it = entries_.find(Key{entity, check});
  return it == entries_.end() ? nullptr : &it->second.state;
}

std::vector<const CheckState*> CheckStateTracker::states() const {
  std::vector<const CheckState*> out;
  out.reserve(entries_.size());
  for (const auto& [k, e] : entries_) out.push_back(&e.state);
  return out;
}

bool CheckStateTracker::remove(const std::string& entity, const std::string& check) {
  return entries_.erase(Key{entity, check}) > 0;
}

size_t CheckStateTracker::remove_check(const std::string& check) {
  return std::erase_if(entries_, [&](const auto& kv) { return kv.first.second == check; });
}

size_t CheckStateTracker::remove_entity(const std::string& entity) {
  return std::erase_if(entries_, [&](const auto& kv) { return kv.first.first == entity; });
}

std::vector<CheckStateTracker::TtlExpiry> CheckStateTracker::expire_ttl(int64_t now_ms) {
  std::vector<TtlExpiry> out;
  for (auto& [key, e] : entries_) {
    if (e.ttl_deadline_ms == 0 || now_ms < e.ttl_deadline_ms) continue;
    CheckResult r;
    r.name = key.second;
    r.status = e.policy.ttl_status;
    r.output = "Last check execution was " + std::to_string((now_ms - e.last_result_ms) / 1000) + " seconds ago";
    r.executed = now_ms / 1000;
    arm_ttl(e, now_ms);
    Recorded rec = record_result(e.state, std::move(r), e.policy);
    out.push_back(TtlExpiry{key.first, rec, &e.state});
  }
  return out;
}

}  // namespace stele::monitor
