// The bodies of `PATCH /api/v1/apps/{id}/config` that `stele config set` and
// `stele config unset` send (docs/pipeline.md "CLI"), checked locally so a
// typo is named before anything changes. Pure.
#pragma once
#include <string>
#include <vector>

#include "common/json.h"
#include "common/result.h"

namespace stele::cli {

// A config key is an environment variable name: letters, digits and '_',
// not starting with a digit. "" when `key` is one, else what is wrong.
std::string config_key_problem(const std::string& key);

// "K=V" arguments -> {"K": "V", ...}. The value is everything after the
// first '=' and may be empty or hold '='. Errors (code 0, message naming the
// argument): no '=', a bad key, the same key twice, no arguments.
Result<Json> config_set_patch(const std::vector<std::string>& args);

// Keys -> {"K": null, ...}. Errors: a "K=V" argument, a bad key, no keys.
Result<Json> config_unset_patch(const std::vector<std::string>& keys);

}  // namespace stele::cli
