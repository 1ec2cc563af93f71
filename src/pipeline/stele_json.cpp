#include "pipeline/stele_json.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "common/names.h"

namespace stele::pipeline {

namespace {

constexpr std::array<const char*, 5> kPipelineFields = {"build", "test", "release", "branch", "autoDeploy"};

// Collects FieldErrors, one entry per path.
class Problems {
 public:
  void add(const std::string& path, std::string msg) {
    for (auto& f : details_)
      if (f.path == path) {
        f.errors.push_back(std::move(msg));
        return;
      }
    details_.push_back(FieldError{path, {std::move(msg)}});
  }
  void merge(std::vector<FieldError> more) {
    for (auto& f : more)
      for (auto& e : f.errors) add(f.path, std::move(e));
  }
  bool empty() const { return details_.empty(); }
  Error take() {
    std::stable_sort(details_.begin(), details_.end(),
                     [](const FieldError& a, const FieldError& b) { return a.path < b.path; });
    return Error{"stele.json is not valid", std::move(details_), 422};
  }

 private:
  std::vector<FieldError> details_;
};

const char* type_name(const Json& j) { return j.type_name(); }

// The document's value for `key`, or nullptr when absent or null.
const Json* member(const Json& doc, const char* key) {
  auto it = doc.find(key);
  if (it == doc.end() || it->is_null()) return nullptr;
  return &*it;
}

bool has_control_or_space(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](unsigned char c) { return c <= ' ' || c == 0x7f; });
}

// A repo-relative path: not absolute, no "..", no NUL or newline.
std::string dockerfile_problem(const std::string& p) {
  if (p.empty()) return "must not be empty";
  if (p.front() == '/') return "must be a path relative to the repository root";
  if (p.find('\0') != std::string::npos || p.find('\n') != std::string::npos)
    return "must not contain NUL or newline characters";
  size_t start = 0;
  while (start <= p.size()) {
    size_t slash = p.find('/', start);
    std::string_view seg(p.data() + start, (slash == std::string::npos ? p.size() : slash) - start);
    if (seg == "..") return "must stay inside the repository (no '..')";
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return "";
}

// git's check-ref-format rules for one branch name, shortened.
std::string branch_problem(std::string_view b) {
  if (b.empty()) return "must not be empty";
  if (has_control_or_space(b)) return "must not contain spaces or control characters";
  if (b.find_first_of("~^:?*[\\") != std::string_view::npos)
    return "must not contain any of ~ ^ : ? * [ \\";
  if (b.find("..") != std::string_view::npos || b.find("//") != std::string_view::npos ||
      b.find("@{") != std::string_view::npos)
    return "must not contain '..', '//' or '@{'";
  if (b.front() == '-' || b.front() == '/' || b.back() == '/' || b.back() == '.' || b == "@")
    return "is not a valid git branch name";
  if (b.size() >= 5 && b.substr(b.size() - 5) == ".lock") return "must not end in .lock";
  return "";
}

// A positive number at `key` of a step, else a problem at base/key.
std::optional<double> positive_number(const Json& step, const char* key, const std::string& base, Problems& p) {
  const Json* v = member(step, key);
  if (!v) return std::nullopt;
  if (!v->is_number() || !(v->get<double>() > 0) || !std::isfinite(v->get<double>())) {
    p.add(base + "/" + key, std::string("expected a number > 0, got ") + (v->is_number() ? v->dump() : type_name(*v)));
    return std::nullopt;
  }
  return v->get<double>();
}

// "mem" (MB), "cpus", "timeoutSeconds" of a build step.
void parse_limits(const Json& v, const std::string& base, StepSpec& step, Problems& p) {
  step.mem = positive_number(v, "mem", base, p);
  step.cpus = positive_number(v, "cpus", base, p);
  const Json* t = member(v, "timeoutSeconds");
  if (!t) return;
  if (!t->is_number_integer() || t->get<int64_t>() < 1 || t->get<int64_t>() > kMaxStepTimeoutSeconds)
    return p.add(base + "/timeoutSeconds", "expected whole seconds from 1 to " + std::to_string(kMaxStepTimeoutSeconds) +
                                               ", got " + (t->is_number() ? t->dump() : type_name(*t)));
  step.timeout_seconds = t->get<int64_t>();
}


// {"cmd": "..."} (or, for build, {"dockerfile": "..."} and the limits);
// unknown keys refused.
void parse_step(const Json& doc, const char* key, bool is_build, std::optional<StepSpec>& step,
                std::optional<std::string>* dockerfile, Problems& p) {
  const Json* v = member(doc, key);
  if (!v) return;
  std::string base = std::string("/") + key;
  if (!v->is_object()) {
    p.add(base, std::string("expected an object like {\"cmd\": \"...\"}, got ") + type_name(*v));
    return;
  }
  for (const auto& [k, _] : v->items())
    if (k != "cmd" && !(is_build && (k == "dockerfile" || k == "mem" || k == "cpus" || k == "timeoutSeconds")))
      p.add(base + "/" + k, is_build ? "unknown field (expected cmd or dockerfile, and mem, cpus, timeoutSeconds)"
                                     : "unknown field (expected cmd)");
  const Json* cmd = member(*v, "cmd");
  const Json* df = is_build ? member(*v, "dockerfile") : nullptr;
  if (cmd && df) {
    p.add(base, "give either cmd or dockerfile, not both");
    return;
  }
  if (df) {
    if (!df->is_string()) return p.add(base + "/dockerfile", std::string("expected a string, got ") + type_name(*df));
    auto problem = dockerfile_problem(df->get<std::string>());
    if (!problem.empty()) return p.add(base + "/dockerfile", problem);
    *dockerfile = df->get<std::string>();
    StepSpec s;
    s.cmd = dockerfile_build_cmd(*df);
    parse_limits(*v, base, s, p);
    step = std::move(s);
    return;
  }
  if (!cmd) return p.add(base + "/cmd", is_build ? "is required (or dockerfile)" : "is required");
  if (!cmd->is_string()) return p.add(base + "/cmd", std::string("expected a string, got ") + type_name(*cmd));
  std::string c = cmd->get<std::string>();
  if (std::all_of(c.begin(), c.end(), [](unsigned char ch) { return ch == ' ' || (ch >= '\t' && ch <= '\r'); }))
    return p.add(base + "/cmd", "must not be empty");
  StepSpec s;
  s.cmd = std::move(c);
  if (is_build) parse_limits(*v, base, s, p);
  step = std::move(s);
}

Json step_json(const StepSpec& s) {
  Json j = {{"cmd", s.cmd}};
  if (s.mem) j["mem"] = *s.mem;
  if (s.cpus) j["cpus"] = *s.cpus;
  if (s.timeout_seconds) j["timeoutSeconds"] = *s.timeout_seconds;
  return j;
}

void parse_branch(const Json& doc, RepoSpec& r, Problems& p) {
  const Json* v = member(doc, "branch");
  if (!v) return;
  if (!v->is_string()) return p.add("/branch", std::string("expected a string, got ") + type_name(*v));
  std::string_view b = v->get_ref<const std::string&>();
  if (b.substr(0, 11) == "refs/heads/") b.remove_prefix(11);
  auto problem = branch_problem(b);
  if (!problem.empty()) return p.add("/branch", problem);
  r.branch = std::string(b);
}

void parse_auto_deploy(const Json& doc, RepoSpec& r, Problems& p) {
  const Json* v = member(doc, "autoDeploy");
  if (!v) return;
  if (!v->is_boolean()) return p.add("/autoDeploy", std::string("expected true or false, got ") + type_name(*v));
  r.auto_deploy = v->get<bool>();
}

// The file's id must be the repository's app; checked here so the message
// names the repository rather than parse_app_spec's "URL".
void check_id(const Json& doc, const std::string& app_id, Problems& p) {
  auto it = doc.find("id");
  if (it == doc.end() || it->is_null()) return;
  if (!it->is_string()) return p.add("/id", std::string("expected a string, got ") + type_name(*it));
  std::string given = canonical_app_id(it->get<std::string>());
  if (given != canonical_app_id(app_id))
    p.add("/id", "id " + given + " does not match the app this repository belongs to, " + canonical_app_id(app_id));
}

std::string without_exception_prefix(std::string msg) {
  // nlohmann: "[json.exception.parse_error.101] parse error at line 1, column 2: ..."
  if (!msg.empty() && msg.front() == '[') {
    auto close = msg.find("] ");
    if (close != std::string::npos) msg.erase(0, close + 2);
  }
  return msg;
}

// parse_json's message ("invalid JSON: [json.exception...] parse error at
// line L, column C: ...") without the library's prefixes.
Error invalid_json(const Error& e) {
  std::string why = e.message;
  if (why.rfind("invalid JSON: ", 0) == 0) why.erase(0, 14);
  why = without_exception_prefix(why);
  return Error{"stele.json is not valid JSON: " + why, {FieldError{"/", {why}}}, 422};
}

}  // namespace

Result<RepoSpec> parse_repo_spec(const Json& doc, const std::string& app_id) {
  Problems p;
  if (!doc.is_object()) {
    p.add("/", std::string("expected an object, got ") + type_name(doc));
    return fail(p.take());
  }
  RepoSpec r;
  parse_step(doc, "build", true, r.build, &r.dockerfile, p);
  parse_step(doc, "test", false, r.test, nullptr, p);
  parse_step(doc, "release", false, r.release, nullptr, p);
  parse_branch(doc, r, p);
  parse_auto_deploy(doc, r, p);
  check_id(doc, app_id, p);

  Json app = doc;
  for (const char* k : kPipelineFields) app.erase(k);
  app.erase("id");  // checked above; the repository's app id is the one used
  auto spec = parse_app_spec(app, app_id);
  if (!spec) p.merge(std::move(spec.error().details));
  if (!p.empty()) return fail(p.take());
  r.app = std::move(*spec);
  return r;
}

Result<RepoSpec> parse_stele_json(std::string_view text, const std::string& app_id) {
  auto doc = parse_json(text);
  if (!doc) return fail(invalid_json(doc.error()));
  return parse_repo_spec(*doc, app_id);
}

std::string dockerfile_build_cmd(const std::string& dockerfile) { return "docker build -f " + dockerfile + " ."; }

Json repo_spec_json(const RepoSpec& r) {
  Json j = app_spec_json(r.app);
  if (r.build) j["build"] = step_json(*r.build);
  if (r.dockerfile) {
    j["build"].erase("cmd");
    j["build"]["dockerfile"] = *r.dockerfile;
  }
  if (r.test) j["test"] = step_json(*r.test);
  if (r.release) j["release"] = step_json(*r.release);
  j["branch"] = r.branch;
  j["autoDeploy"] = r.auto_deploy;
  return j;
}

}  // namespace stele::pipeline
