#include "cli/config_patch.h"

namespace stele::cli {

namespace {

bool key_char(char c, bool first) {
  bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
  return alpha || (!first && c >= '0' && c <= '9');
}

}  // namespace

std::string config_key_problem(const std::string& key) {
  if (key.empty()) return "the key is empty";
  for (size_t i = 0; i < key.size(); ++i)
    if (!key_char(key[i], i == 0))
      return i == 0 && key[i] >= '0' && key[i] <= '9' ? "a key must not start with a digit"
                                                      : "a key may hold only letters, digits and '_'";
  return "";
}

Result<Json> config_set_patch(const std::vector<std::string>& args) {
  if (args.empty()) return fail("config set needs at least one KEY=VALUE");
  Json patch = Json::object();
  for (const auto& a : args) {
    auto eq = a.find('=');
    if (eq == std::string::npos) return fail("bad argument '" + a + "': expected KEY=VALUE (e.g. GREETING=hi)");
    std::string key = a.substr(0, eq);
    if (auto p = config_key_problem(key); !p.empty()) return fail("bad argument '" + a + "': " + p);
    if (patch.contains(key)) return fail("bad argument '" + a + "': " + key + " is given twice");
    patch[key] = a.substr(eq + 1);
  }
  return patch;
}

Result<Json> config_unset_patch(const std::vector<std::string>& keys) {
  if (keys.empty()) return fail("config unset needs at least one KEY");
  Json patch = Json::object();
  for (const auto& k : keys) {
    if (k.find('=') != std::string::npos)
      return fail("bad argument '" + k + "': config unset takes keys only (use `stele config set` for KEY=VALUE)");
    if (auto p = config_key_problem(k); !p.empty()) return fail("bad argument '" + k + "': " + p);
    patch[k] = nullptr;
  }
  return patch;
}

}  // namespace stele::cli
