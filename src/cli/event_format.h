// How the client shows events of the native stream (docs/api.md "Event"):
// one line per event for `stele events`, and the progress of one deployment
// for `--wait`. Pure; unit-tested.
#pragma once
#include <string>

#include "common/json.h"

namespace stele::cli {

// Short description of an event, e.g. "task web-r2.0.1 running on host1
// ports 31000", "deployment d7: 1/3 new healthy, 3 old", "node h1 (10.0.0.5)
// lost". Unknown types show their own fields as compact JSON.
std::string describe_event(const Json& e);

// "<time>  <type padded>  <app or ->  <description>" (no newline).
std::string format_event_line(const Json& e);

// Follows one deployment through the events of its app (oldest first).
// Events before the deployment's own first event are ignored, so a stream
// that starts too early prints nothing stale.
class DeploymentWatch {
 public:
  enum class Outcome { Running, Succeeded, Failed, Canceled };
  struct Step {
    bool relevant = false;  // concerns this deployment (printed in --json mode)
    std::string line;       // progress line for a person; "" = none
  };

  DeploymentWatch(std::string app_id, std::string deployment_id);
  Step on_event(const Json& e);
  Outcome outcome() const { return outcome_; }
  bool done() const { return outcome_ != Outcome::Running; }
  // Succeeded: "Deployment d7 succeeded: /shop/web runs release 3 with 3
  // instances". Failed/Canceled: the error message ("deployment d7 failed:
  // <reason>"). Running: "".
  std::string summary() const;

 private:
  Step on_deployment_event(const std::string& type, const Json& d);
  Step on_app_event(const std::string& type, const Json& e);

  std::string app_id_, deployment_id_;
  bool seen_ = false;
  Outcome outcome_ = Outcome::Running;
  std::string reason_;
  Json last_ = Json::object();  // the deployment as last reported
};

}  // namespace stele::cli
