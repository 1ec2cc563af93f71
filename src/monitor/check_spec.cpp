// Check, handler and silence definitions: validation (every bad field
// reported), JSON rendering, silence matching and handler filters. Nothing
// here throws: nlohmann accessors run only after the type was checked.
#include "monitor/check_spec.h"

#include <algorithm>
#include <cmath>
#include <initializer_list>

#include "common/names.h"
#include "monitor/command_tokens.h"

namespace stele::monitor {

namespace {

bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
         c == '-';
}

// "" when `s` is a valid name; `extra` are more allowed characters.
std::string name_problem(std::string_view s, std::string_view extra = "") {
  if (s.empty()) return "must not be empty";
  if (s.size() > 64) return "must be at most 64 characters";
  for (char c : s)
    if (!name_char(c) && extra.find(c) == std::string_view::npos)
      return "may only hold letters, digits and " + std::string("_ . -") +
             (extra.empty() ? "" : " " + std::string(extra));
  return "";
}

std::string subscription_problem(std::string_view s) { return s == "*" ? "" : name_problem(s, ":"); }

// Reads one JSON object's fields for a parse_* function: typed getters that
// record what is wrong under "/<field>", and the unknown-field sweep.
class ObjectReader {
 public:
  ObjectReader(const Json& j, std::string what) : j_(j), what_(std::move(what)) {
    if (!j_.is_object()) problem("", "expected a JSON object");
  }

  void problem(std::string_view field, std::string msg) {
    std::string path = "/" + std::string(field);
    for (auto& d : details_)
      if (d.path == path) return d.errors.push_back(std::move(msg));
    details_.push_back(FieldError{path, {std::move(msg)}});
  }

  const Json* get(const char* field) {
    seen_.push_back(field);
    if (!j_.is_object()) return nullptr;
    auto it = j_.find(field);
    return it == j_.end() || it->is_null() ? nullptr : &*it;
  }

  std::optional<std::string> string(const char* field) {
    return typed<std::string>(field, &Json::is_string, "expected a string");
  }
  std::optional<bool> boolean(const char* field) {
    return typed<bool>(field, &Json::is_boolean, "expected true or false");
  }
  std::optional<double> number(const char* field) { return typed<double>(field, &Json::is_number, "expected a number"); }

  // A required name (checks, handlers); "" when missing or bad.
  std::string name(const char* field) {
    auto v = string(field);
    if (!v) problem(field, "required");
    else if (auto why = name_problem(*v); !why.empty()) problem(field, why);
    else return *v;
    return "";
  }

  // Whole seconds in 1..kMaxSeconds ("10.0" is fine, "0.5" is not).
  std::optional<int64_t> seconds(const char* field) {
    return whole(field, 1, kMaxSeconds, "a whole number of seconds");
  }

  std::optional<int64_t> whole(const char* field, int64_t lo, int64_t hi, const std::string& what) {
    const Json* v = get(field);
    if (!v) return std::nullopt;
    double d = v->is_number() ? v->get<double>() : NAN;
    if (!std::isfinite(d) || std::floor(d) != d || d < double(lo) || d > double(hi)) {
      problem(field, "must be " + what + " from " + std::to_string(lo) + " to " + std::to_string(hi));
      return std::nullopt;
    }
    return static_cast<int64_t>(d);
  }

  // An array of strings, each checked by `check` ("" = fine).
  template <class Check>
  std::optional<std::vector<std::string>> strings(const char* field, Check check) {
    const Json* v = get(field);
    if (!v) return std::nullopt;
    if (!v->is_array()) {
      problem(field, "expected an array of strings");
      return std::nullopt;
    }
    std::vector<std::string> out;
    for (size_t i = 0; i < v->size(); ++i) {
      std::string at = std::string(field) + "/" + std::to_string(i);
      if (!(*v)[i].is_string()) {
        problem(at, "expected a string");
        continue;
      }
      out.push_back((*v)[i].get<std::string>());
      if (std::string why = check(out.back()); !why.empty()) problem(at, why);
    }
    return out;
  }

  std::optional<std::map<std::string, std::string>> string_map(const char* field) {
    const Json* v = get(field);
    if (!v) return std::nullopt;
    std::map<std::string, std::string> out;
    if (!v->is_object()) problem(field, "expected an object of strings");
    else
      for (const auto& [k, e] : v->items()) {
        if (e.is_string()) out[k] = e.get<std::string>();
        else problem(std::string(field) + "/" + k, "expected a string");
      }
    return out;
  }

  // Call after every get(): refuses what was never asked for.
  void refuse_unknown() {
    if (!j_.is_object()) return;
    for (const auto& [k, v] : j_.items()) {
      if (std::find(seen_.begin(), seen_.end(), k) != seen_.end()) continue;
      std::string expected;
      for (const auto& s : seen_) expected += (expected.empty() ? "" : ", ") + s;
      problem(k, "unknown field (expected " + expected + ")");
    }
  }

  template <class T>
  Result<T> finish(T value) {
    refuse_unknown();
    if (details_.empty()) return value;
    std::string first = details_.front().path + ": " + details_.front().errors.front();
    return fail(Error{what_ + " is not valid: " + first, std::move(details_), 422});
  }

 private:
  template <class T>
  std::optional<T> typed(const char* field, bool (Json::*is)() const noexcept, const char* expected) {
    const Json* v = get(field);
    if (!v) return std::nullopt;
    if (((*v).*is)()) return v->get<T>();
    problem(field, expected);
    return std::nullopt;
  }

  const Json& j_;
  std::string what_;
  std::vector<std::string> seen_;
  std::vector<FieldError> details_;
};

std::string url_problem(const std::string& url) {
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) return "must start with http:// or https://";
  if (url.find_first_of(" \t\r\n") != std::string::npos) return "must not hold whitespace";
  return "";
}

void read_flap_thresholds(ObjectReader& r, CheckSpec& c) {
  if (auto v = r.number("low_flap_threshold")) c.low_flap_threshold = *v;
  if (auto v = r.number("high_flap_threshold")) c.high_flap_threshold = *v;
  if (c.low_flap_threshold < 0 || c.low_flap_threshold > 100)
    r.problem("low_flap_threshold", "must be a percentage from 0 to 100");
  if (c.high_flap_threshold < 0 || c.high_flap_threshold > 100)
    r.problem("high_flap_threshold", "must be a percentage from 0 to 100");
  if (c.low_flap_threshold >= c.high_flap_threshold)
    r.problem("high_flap_threshold", "must be greater than low_flap_threshold");
}

void check_relations(ObjectReader& r, const CheckSpec& c) {
  if (c.ttl && *c.ttl <= c.interval) r.problem("ttl", "must be greater than interval (" + std::to_string(c.interval) + ")");
  if (c.subscriptions.empty() && !c.proxy)
    r.problem("subscriptions", "must name at least one subscription (\"*\" = every agent) unless proxy is set");
  if (!c.command.empty())
    if (auto t = check_command_tokens(c.command, c.proxy.has_value()); !t) r.problem("command", t.error().message);
}

}  // namespace

Result<CheckSpec> parse_check(const Json& j) {
  ObjectReader r(j, "check");
  CheckSpec c;
  c.name = r.name("name");
  auto command = r.string("command");
  if (!command || command->empty()) r.problem("command", "required (a shell command line)");
  else c.command = *command;
  if (auto v = r.seconds("interval")) c.interval = *v;
  if (auto v = r.seconds("timeout")) c.timeout = *v;
  if (auto v = r.strings("subscriptions", subscription_problem)) c.subscriptions = *v;
  if (auto v = r.boolean("round_robin")) c.round_robin = *v;
  c.ttl = r.seconds("ttl");
  if (auto v = r.whole("ttl_status", 1, 3, "a failing status")) c.ttl_status = static_cast<CheckStatus>(*v);
  if (auto v = r.strings("handlers", [](const std::string& s) { return name_problem(s); })) c.handlers = *v;
  if (auto v = r.whole("occurrences", 1, 1'000'000, "a whole number")) c.occurrences = *v;
  if (auto v = r.string("proxy")) {
    if (v->empty() || v->find_first_of(" \t\r\n{}") != std::string::npos)
      r.problem("proxy", "must be an app id such as /shop/web");
    else
      c.proxy = canonical_app_id(*v);
  }
  read_flap_thresholds(r, c);
  if (auto v = r.string_map("annotations")) c.annotations = *v;
  check_relations(r, c);
  return r.finish(std::move(c));
}

void to_json(Json& j, const CheckSpec& c) {
  j = Json{{"name", c.name},
           {"command", c.command},
           {"interval", c.interval},
           {"timeout", c.timeout},
           {"subscriptions", c.subscriptions},
           {"round_robin", c.round_robin},
           {"handlers", c.handlers},
           {"occurrences", c.occurrences},
           {"low_flap_threshold", c.low_flap_threshold},
           {"high_flap_threshold", c.high_flap_threshold},
           {"annotations", c.annotations}};
  if (c.ttl) {
    j["ttl"] = *c.ttl;
    j["ttl_status"] = static_cast<int>(c.ttl_status);
  }
  if (c.proxy) j["proxy"] = *c.proxy;
}

Result<HandlerFilter> parse_filter(std::string_view text) {
  if (text == "is_incident") return HandlerFilter{HandlerFilter::Kind::kIsIncident, 0};
  if (text == "not_silenced") return HandlerFilter{HandlerFilter::Kind::kNotSilenced, 0};
  std::string_view s = text;
  auto skip_spaces = [&s] {
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  };
  std::string expected = "unknown filter '" + std::string(text) +
                         "' (expected is_incident, not_silenced or occurrences >= N)";
  if (s.substr(0, 11) != "occurrences") return fail(expected);
  s.remove_prefix(11);
  skip_spaces();
  if (s.substr(0, 2) != ">=") return fail(expected);
  s.remove_prefix(2);
  skip_spaces();
  int64_t n = 0;
  if (s.empty() || s.size() > 9) return fail("'" + std::string(text) + "': N must be a whole number from 1");
  for (char c : s) {
    if (c < '0' || c > '9') return fail("'" + std::string(text) + "': N must be a whole number from 1");
    n = n * 10 + (c - '0');
  }
  if (n < 1) return fail("'" + std::string(text) + "': N must be a whole number from 1");
  return HandlerFilter{HandlerFilter::Kind::kOccurrencesAtLeast, n};
}

std::string filter_text(const HandlerFilter& f) {
  switch (f.kind) {
    case HandlerFilter::Kind::kIsIncident: return "is_incident";
    case HandlerFilter::Kind::kNotSilenced: return "not_silenced";
    case HandlerFilter::Kind::kOccurrencesAtLeast: break;
  }
  return "occurrences >= " + std::to_string(f.n);
}

Result<HandlerSpec> parse_handler(const Json& j) {
  ObjectReader r(j, "handler");
  HandlerSpec h;
  h.name = r.name("name");
  auto type = r.string("type");
  if (!type) r.problem("type", "required (pipe or http)");
  else if (*type == "http") h.type = HandlerSpec::Type::kHttp;
  else if (*type != "pipe") r.problem("type", "must be pipe or http");
  auto command = r.string("command");
  auto url = r.string("url");
  bool http = h.type == HandlerSpec::Type::kHttp;
  if (type && !http && (!command || command->empty())) r.problem("command", "required for a pipe handler");
  if (http && command) r.problem("command", "only for a pipe handler (http handlers take url)");
  if (type && http && !url) r.problem("url", "required for an http handler");
  if (!http && url) r.problem("url", "only for an http handler (pipe handlers take command)");
  if (command) h.command = *command;
  if (url) {
    if (auto why = url_problem(*url); !why.empty()) r.problem("url", why);
    h.url = *url;
  }
  r.strings("filters", [&h](const std::string& s) {
    auto f = parse_filter(s);
    if (f) h.filters.push_back(*f);
    return f ? std::string() : f.error().message;
  });
  if (auto v = r.seconds("timeout")) h.timeout = *v;
  return r.finish(std::move(h));
}

void to_json(Json& j, const HandlerSpec& h) {
  Json filters = Json::array();
  for (const auto& f : h.filters) filters.push_back(filter_text(f));
  bool http = h.type == HandlerSpec::Type::kHttp;
  j = Json{{"name", h.name}, {"type", http ? "http" : "pipe"}, {"filters", filters}, {"timeout", h.timeout}};
  if (http) j["url"] = h.url;
  else j["command"] = h.command;
}

bool filters_pass(const std::vector<HandlerFilter>& filters, const FilterInput& in) {
  for (const auto& f : filters) {
    bool pass = true;
    switch (f.kind) {
      case HandlerFilter::Kind::kIsIncident:
        pass = in.status != CheckStatus::kOk || in.previous != CheckStatus::kOk;
        break;
      case HandlerFilter::Kind::kNotSilenced: pass = !in.silenced; break;
      case HandlerFilter::Kind::kOccurrencesAtLeast: pass = in.occurrences >= f.n; break;
    }
    if (!pass) return false;
  }
  return true;
}

std::string silence_id(const Silence& s) { return s.subscription + ":" + s.check; }

Result<Silence> parse_silence(const Json& j) {
  ObjectReader r(j, "silence");
  Silence s;
  auto subscription = r.string("subscription");
  auto check = r.string("check");
  if (!subscription && !check) r.problem("subscription", "subscription or check is required");
  if (subscription) {
    if (auto why = name_problem(*subscription, ":*"); !why.empty()) r.problem("subscription", why);
    s.subscription = *subscription;
  }
  if (check) {
    if (auto why = name_problem(*check, "*"); !why.empty()) r.problem("check", why);
    s.check = *check;
  }
  s.expire = r.seconds("expire");
  if (auto v = r.boolean("expire_on_resolve")) s.expire_on_resolve = *v;
  if (auto v = r.string("reason")) s.reason = *v;
  if (auto v = r.string("creator")) s.creator = *v;
  if (auto v = r.whole("begin", 0, int64_t(1) << 40, "unix seconds")) s.begin = *v;
  r.get("id");  // derived; accepted so a GET answer can be sent back
  return r.finish(std::move(s));
}

void to_json(Json& j, const Silence& s) {
  j = Json{{"id", silence_id(s)},           {"subscription", s.subscription}, {"check", s.check},
           {"expire_on_resolve", s.expire_on_resolve}, {"reason", s.reason},  {"creator", s.creator},
           {"begin", s.begin}};
  if (s.expire) j["expire"] = *s.expire;
}

bool silence_expired(const Silence& s, int64_t now_s) { return s.expire && now_s >= s.begin + *s.expire; }

bool wildcard_match(std::string_view p, std::string_view t) {
  // Greedy with one backtrack point: the last '*' seen.
  size_t pi = 0, ti = 0, star = std::string_view::npos, mark = 0;
  while (ti < t.size()) {
    if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = ti;
    } else if (pi < p.size() && p[pi] == t[ti]) {
      ++pi, ++ti;
    } else if (star != std::string_view::npos) {
      pi = star + 1;
      ti = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

bool silence_matches(const Silence& s, const std::vector<std::string>& entity_subscriptions, std::string_view check) {
  if (!wildcard_match(s.check, check)) return false;
  if (s.subscription == "*") return true;
  return std::any_of(entity_subscriptions.begin(), entity_subscriptions.end(),
                     [&s](const std::string& sub) { return wildcard_match(s.subscription, sub); });
}

}  // namespace stele::monitor
