// RepoSpec: the `stele.json` at a pushed repository's root — the app's
// Marathon spec plus the pipeline's own fields (build, test, release, branch,
// autoDeploy). Pure functions, thread-safe.
//
//   {"id": "/web", "cmd": "./server", "instances": 2,        <- AppSpec (Marathon names)
//    "build": {"cmd": "make", "mem": 512, "cpus": 1, "timeoutSeconds": 600}
//             | {"dockerfile": "Dockerfile"},
//    "test": {"cmd": "make test"}, "release": {"cmd": "./migrate"},
//    "branch": "main", "autoDeploy": true}
//
// Every pipeline field is optional: no `build` means the checkout itself is
// the slug, no `test` means only the smoke run gates the release. `null` is
// the same as absent. The pipeline objects are strict (an unknown key such as
// "/build/cmnd" is an error) because a typo there would silently skip a step;
// unknown top-level keys go to AppSpec::extra as Marathon clients expect.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/json.h"
#include "common/result.h"
#include "common/spec.h"

namespace stele::pipeline {

// The longest a step may be given: one day.
inline constexpr int64_t kMaxStepTimeoutSeconds = 24 * 3600;

// One shell command run by the pipeline (`sh -c cmd` in the step's sandbox).
// The limits are accepted on `build` only ({"cmd", "mem", "cpus",
// "timeoutSeconds"}); unset means the server's defaults for the step.
struct StepSpec {
  std::string cmd;                              // never empty
  std::optional<double> mem;                    // MB, > 0 (the cgroup's memory limit)
  std::optional<double> cpus;                   // > 0
  std::optional<int64_t> timeout_seconds;       // 1..kMaxStepTimeoutSeconds

  friend bool operator==(const StepSpec&, const StepSpec&) = default;
};

struct RepoSpec {
  AppSpec app;                           // pipeline fields removed; id == the repo's app
  std::optional<StepSpec> build;         // {"build": {"cmd": ...}}; with dockerfile: its limits
  std::optional<StepSpec> test;          // {"test": {"cmd": ...}}
  std::optional<StepSpec> release;       // run once before rollout; failure stops the deploy
  // {"build": {"dockerfile": "path", limits...}}: a repo-relative path, built
  // through the Docker engine; `build` then holds the limits and a cmd that
  // describes the build (dockerfile_build_cmd). The pipeline also sets it for
  // a repository with a Dockerfile at its root and no build.
  std::optional<std::string> dockerfile;
  std::string branch = "main";           // short name; "refs/heads/x" is stored as "x"
  bool auto_deploy = true;               // "autoDeploy"

  friend bool operator==(const RepoSpec&, const RepoSpec&) = default;
};

// Parses and validates a stele.json. `app_id` is the app the repository
// belongs to: an "id" in the file must name that app (else an error on
// "/id"); without one, app_id is used.
// Errors: code 422, message "stele.json is not valid", one FieldError per bad
// field with JSON-pointer paths ("/build/cmd", "/autoDeploy", "/cpus", ...),
// sorted by path. Text that is not JSON: code 422, message
// "stele.json is not valid JSON: ... line L, column C ...", one detail at "/".
Result<RepoSpec> parse_stele_json(std::string_view text, const std::string& app_id);

// The same, from an already parsed document.
Result<RepoSpec> parse_repo_spec(const Json& doc, const std::string& app_id);

// stele.json of a RepoSpec: app_spec_json(app) plus every pipeline field
// (defaults written out). parse_repo_spec(repo_spec_json(r), r.app.id) == r.
// "docker build -f <path> .": how a Dockerfile build step is described.
std::string dockerfile_build_cmd(const std::string& dockerfile);

Json repo_spec_json(const RepoSpec& r);

}  // namespace stele::pipeline
