// Containerizers by name: an explicit table (conventions.md "Explicit
// registries"), chosen per task from LaunchSpec::containerizer.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "agent/containerizers/containerizer.h"

namespace stele {

using ContainerizerFactory = std::function<std::unique_ptr<Containerizer>()>;
using ContainerizerRegistry = std::map<std::string, ContainerizerFactory, std::less<>>;

// "process" (containerizers/process.h) and "docker" (containerizers/docker.h).
ContainerizerRegistry builtin_containerizers();

}  // namespace stele
