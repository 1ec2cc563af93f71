// Why a task cannot be placed, in words a user sees on the waiting task.
#pragma once
#include <string>

#include "scheduler/cluster.h"

namespace stele::sched::detail {

// Filters all live agents through the constraints in order, then through the
// resources; names the first step that leaves no agent. Scans every agent, so
// call it only once placement has failed.
std::string explain_failure(const Cluster& cluster, const App& app, const TaskRequest& req,
                            const CompiledConstraints& constraints);

}  // namespace stele::sched::detail
