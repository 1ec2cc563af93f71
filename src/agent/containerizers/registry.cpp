#include "agent/containerizers/registry.h"

#include "agent/containerizers/docker.h"
#include "agent/containerizers/process.h"

namespace stele {

ContainerizerRegistry builtin_containerizers() {
  ContainerizerRegistry r;
  r["process"] = [] { return std::make_unique<ProcessContainerizer>(); };
  r["docker"] = [] { return std::make_unique<DockerContainerizer>(); };
  return r;
}

}  // namespace stele
