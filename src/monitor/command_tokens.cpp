// {{token}} scanning and substitution for proxy check commands.
#include "monitor/command_tokens.h"

#include <optional>

namespace stele::monitor {

namespace {

struct Token {
  size_t at = 0;    // offset of "{{"
  size_t size = 0;  // through "}}"
  std::string_view name;
};

bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// The token starting at `at` ("{{" there), if it is one: "{{", spaces, a
// name, spaces, "}}".
std::optional<Token> token_at(std::string_view s, size_t at) {
  size_t i = at + 2;
  while (i < s.size() && s[i] == ' ') ++i;
  size_t name_start = i;
  while (i < s.size() && name_char(s[i])) ++i;
  size_t name_end = i;
  while (i < s.size() && s[i] == ' ') ++i;
  if (name_end == name_start || s.substr(i, 2) != "}}") return std::nullopt;
  return Token{at, i + 2 - at, s.substr(name_start, name_end - name_start)};
}

// Every token of `s`, in order.
std::vector<Token> tokens(std::string_view s) {
  std::vector<Token> out;
  for (size_t at = s.find("{{"); at != std::string_view::npos;) {
    auto t = token_at(s, at);
    if (t) out.push_back(*t);
    at = s.find("{{", t ? at + t->size : at + 1);
  }
  return out;
}

// port -> 0, port7 -> 7; nullopt for other names.
std::optional<size_t> port_index(std::string_view name) {
  if (name.substr(0, 4) != "port") return std::nullopt;
  std::string_view digits = name.substr(4);
  if (digits.empty()) return 0;
  if (digits.size() > 3) return std::nullopt;
  size_t n = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<size_t>(c - '0');
  }
  return n;
}

bool known(std::string_view name) {
  return name == "host" || name == "task" || name == "app" || name == "entity" || port_index(name);
}

std::string unknown_token(const Token& t) {
  return "unknown token {{" + std::string(t.name) + "}} at " + std::to_string(t.at) +
         " (expected host, port, port0..portN, task, app, entity)";
}

}  // namespace

Result<void> check_command_tokens(std::string_view command, bool has_proxy) {
  for (const Token& t : tokens(command)) {
    if (!known(t.name)) return fail(unknown_token(t));
    if (!has_proxy)
      return fail("{{" + std::string(t.name) + "}} at " + std::to_string(t.at) +
                  " needs a proxy app (tokens are filled in from its tasks)");
  }
  return {};
}

Result<std::string> substitute_tokens(std::string_view command, const ProxyTarget& target) {
  std::string out;
  size_t copied = 0;
  for (const Token& t : tokens(command)) {
    out.append(command.substr(copied, t.at - copied));
    copied = t.at + t.size;
    if (t.name == "host") {
      out += target.host;
    } else if (t.name == "task") {
      out += target.task;
    } else if (t.name == "app") {
      out += target.app;
    } else if (t.name == "entity") {
      out += target.entity;
    } else if (auto i = port_index(t.name)) {
      if (*i >= target.ports.size())
        return fail("{{" + std::string(t.name) + "}}: task " + target.task + " has " +
                    std::to_string(target.ports.size()) + (target.ports.size() == 1 ? " port" : " ports"));
      out += std::to_string(target.ports[*i]);
    } else {
      return fail(unknown_token(t));
    }
  }
  out.append(command.substr(copied));
  return out;
}

}  // namespace stele::monitor
