// Fuzz target for stele.json, read from every pushed repository: any text
// either fails with a 422 naming at least one field, or parses to a RepoSpec
// that survives a trip through its own JSON (as text) unchanged.
// fuzz-sources: src/pipeline/stele_json.cpp src/common/spec.cpp src/common/names.cpp src/common/json.cpp
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "pipeline/stele_json.h"

namespace {

[[noreturn]] void violated(const char* what, std::string_view text) {
  std::fprintf(stderr, "stele_json_fuzz: %s\ninput: %.*s\n", what, static_cast<int>(text.size()), text.data());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::string app_id = "/shop/web";
  auto spec = stele::pipeline::parse_stele_json(text, app_id);
  if (!spec) {
    const auto& e = spec.error();
    if (e.code != 422 || e.details.empty() || e.message.empty()) violated("error without code 422 or details", text);
    for (const auto& f : e.details)
      if (f.path.empty() || f.path[0] != '/' || f.errors.empty()) violated("detail without path or reason", text);
    return 0;
  }
  if (spec->app.id != app_id) violated("accepted a spec for another app", text);
  for (const char* k : {"build", "test", "release", "branch", "autoDeploy"})
    if (spec->app.extra.contains(k)) violated("pipeline field left in extra", text);
  // A Dockerfile build keeps its limits in `build`, whose cmd only describes it.
  if (spec->dockerfile && (!spec->build || spec->build->cmd != stele::pipeline::dockerfile_build_cmd(*spec->dockerfile)))
    violated("a Dockerfile build without its describing build step", text);

  stele::Json rendered = stele::pipeline::repo_spec_json(*spec);
  std::string dumped = rendered.dump();
  auto again = stele::pipeline::parse_stele_json(dumped, app_id);
  if (!again) violated(("rendered stele.json does not parse: " + again.error().message).c_str(), text);
  if (!(*again == *spec)) violated("round trip changed the spec", text);
  if (stele::pipeline::repo_spec_json(*again) != rendered) violated("rendering is not stable", text);
  return 0;
}
