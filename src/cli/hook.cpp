#include "cli/hook.h"

#include <iostream>
#include <sstream>

#include "net/http_client.h"

namespace stele::cli {

namespace {

bool is_hex_id(std::string_view s) {
  return (s.size() == 40 || s.size() == 64) && s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

void say(FILE* out, std::string_view text) {
  fwrite(text.data(), 1, text.size(), out);
  fflush(out);
}

// Streams the answer through, except that the start is held until its first
// line is complete: an error answer (one line of JSON) is then told as one
// readable sentence instead of being echoed raw.
class AnswerPrinter {
 public:
  explicit AnswerPrinter(FILE* out) : out_(out) {}
  bool on_data(std::string_view d) {
    if (streaming_) {
      say(out_, d);
      return true;
    }
    held_.append(d);
    if (held_.find('\n') != std::string::npos || held_.size() > 4096) {
      streaming_ = true;
      say(out_, held_);
      held_.clear();
    }
    return true;
  }
  void finish(int status) {
    bool ok = status >= 200 && status < 300;
    if (!streaming_ && ok) say(out_, held_);
    if (!streaming_ && !ok)
      say(out_, "stele: the pipeline did not start: " + error_from_response(status, held_).message +
                    " (HTTP " + std::to_string(status) + "); the push itself was accepted\n");
    if (streaming_ && !ok) say(out_, "stele: the pipeline answered HTTP " + std::to_string(status) + "\n");
  }

 private:
  FILE* out_;
  std::string held_;
  bool streaming_ = false;
};

}  // namespace

Result<std::vector<PushedRef>> parse_post_receive_input(std::string_view input) {
  std::vector<PushedRef> refs;
  std::istringstream in{std::string(input)};
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    std::istringstream fields(line);
    PushedRef r;
    std::string extra;
    fields >> r.before >> r.after >> r.ref;
    if (r.ref.empty() || (fields >> extra) || !is_hex_id(r.before) || !is_hex_id(r.after))
      return fail("unexpected post-receive line '" + line + "' (expected '<old> <new> <ref>')");
    refs.push_back(std::move(r));
  }
  return refs;
}

Json receive_request(const std::string& app_id, const std::vector<PushedRef>& refs) {
  Json updates = Json::array();
  for (const auto& r : refs) updates.push_back({{"before", r.before}, {"after", r.after}, {"ref", r.ref}});
  return {{"app", app_id}, {"updates", updates}};
}

namespace {
// The request with the pusher (STELE_HOOK_ACTOR, set by the server's git
// route) for the release's events; the server trusts it from its own token only.
std::string receive_body(const EnvLookup& env, const std::string& app_id, const std::vector<PushedRef>& refs) {
  Json body = receive_request(app_id, refs);
  if (auto actor = env("STELE_HOOK_ACTOR")) body["actor"] = *actor;
  return body.dump();
}
}  // namespace

int run_post_receive_hook(const EnvLookup& env, std::istream& in, FILE* out) {
  std::string input((std::istreambuf_iterator<char>(in)), {});
  auto refs = parse_post_receive_input(input);
  if (!refs) {
    say(out, "stele: " + refs.error().message + "; no pipeline started\n");
    return 0;
  }
  if (refs->empty()) return 0;
  auto url = env("STELE_HOOK_URL");
  auto app = env("STELE_HOOK_APP");
  if (!url || !app) {
    say(out, "stele: STELE_HOOK_URL and STELE_HOOK_APP must be set (the server sets them for pushes over "
             "/git/); no pipeline started\n");
    return 0;
  }
  std::string base = *url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  net::Headers headers = {{"Accept", "text/plain"}, {"Content-Type", "application/json"}};
  if (auto token = env("STELE_HOOK_TOKEN")) headers.emplace_back("Authorization", "Bearer " + *token);
  AnswerPrinter printer(out);
  auto status = net::http_stream_sync(
      "POST", base + "/api/v1/hooks/receive", receive_body(env, *app, *refs), headers,
      [&printer](std::string_view d) { return printer.on_data(d); }, std::chrono::hours(1));
  if (!status) {
    say(out, format_error(connection_error(base, status.error())) + "; the push was accepted but no pipeline started\n");
    return 0;
  }
  printer.finish(*status);
  return 0;
}

int hook_main(int argc, char** argv) {
  std::string name = argc > 2 ? argv[2] : "";
  if (name != "post-receive") {
    fprintf(stderr, "stele: unknown hook '%s' (only post-receive)\n", name.c_str());
    return 0;  // a hook must never fail a push
  }
  try {
    return run_post_receive_hook(process_env, std::cin, stdout);
  } catch (const std::exception& e) {
    say(stdout, std::string("stele: the post-receive hook failed: ") + e.what() + "\n");
    return 0;
  }
}

}  // namespace stele::cli
