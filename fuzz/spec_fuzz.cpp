// Fuzz target for Marathon app specs: any JSON document either fails to
// parse as a spec with a 422, or parses to a spec that survives a trip
// through its own Marathon JSON unchanged.
// fuzz-sources: src/common/spec.cpp src/common/names.cpp src/common/json.cpp
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "common/spec.h"

namespace {

[[noreturn]] void violated(const char* what, const stele::Json& doc) {
  std::fprintf(stderr, "spec_fuzz: %s\ninput spec: %s\n", what,
               doc.dump(-1, ' ', false, stele::Json::error_handler_t::replace).c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = stele::parse_json(text);  // what the API uses on request bodies
  if (!parsed) return 0;
  const stele::Json& doc = *parsed;

  auto spec = stele::parse_app_spec(doc);
  if (!spec) {
    if (spec.error().code != 422 || spec.error().details.empty()) violated("error without details", doc);
    return 0;
  }
  stele::Json rendered = stele::app_spec_json(*spec);
  auto again = stele::parse_app_spec(rendered);
  if (!again) violated("rendered spec does not parse", doc);
  if (!(*again == *spec)) violated("round trip changed the spec", doc);
  if (stele::app_spec_json(*again) != rendered) violated("rendering is not stable", doc);
  if (!stele::only_instances_differ(*spec, *again)) violated("spec differs from itself", doc);

  // A merge of the spec's own JSON is the identity.
  auto merged = stele::merge_app_spec(*spec, rendered);
  if (!merged || !(*merged == *spec)) violated("merge with itself changed the spec", doc);
  return 0;
}
