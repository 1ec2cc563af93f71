#include "docker/engine.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "docker/build_context.h"
#include "net/http.h"

namespace stele::docker {

namespace {

bool is_2xx(int status) { return status / 100 == 2; }

Error with_context(const std::string& what, const Error& e) {
  return Error{"docker: " + what + ": " + e.message, e.details, e.code};
}

std::string flag(bool b) { return b ? "1" : "0"; }

// An fd that is closed on scope exit.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

Result<void> write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t w = ::write(fd, data.data(), data.size());
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return fail(std::strerror(errno));
    data.remove_prefix(static_cast<size_t>(w));
  }
  return {};
}

// The id in /images/load's progress text: "Loaded image ID: sha256:..."
// (an image saved by id) or "Loaded image: name:tag" (saved by name).
struct LoadedImage {
  std::string id, name, error;
};

void on_load_message(const Json& m, LoadedImage& out) {
  if (!m.is_object()) return;
  if (m.contains("error") && m["error"].is_string() && out.error.empty()) out.error = m["error"].get<std::string>();
  if (!m.contains("stream") || !m["stream"].is_string()) return;
  std::string s = m["stream"].get<std::string>();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  const std::string by_id = "Loaded image ID: ", by_name = "Loaded image: ";
  if (s.rfind(by_id, 0) == 0 && out.id.empty()) out.id = s.substr(by_id.size());
  if (s.rfind(by_name, 0) == 0 && out.name.empty()) out.name = s.substr(by_name.size());
}

}  // namespace

Engine::Engine(EngineOptions o) : o_(std::move(o)), http_(o_.socket_path) {}

HttpCall Engine::call(std::string method, const std::string& path) const {
  HttpCall c;
  c.method = std::move(method);
  c.target = o_.api_prefix + path;
  return c;
}

Result<HttpReply> Engine::short_call(const std::string& what, const HttpCall& c,
                                     std::chrono::milliseconds extra) const {
  auto r = http_.exchange(c, deadline_in(o_.timeout + extra));
  if (!r) return fail(with_context(what, r.error()));
  return r;
}

Result<HttpReply> Engine::expect_ok(const std::string& what, const HttpCall& c, std::initializer_list<int> also_ok,
                                    std::chrono::milliseconds extra) const {
  auto r = short_call(what, c, extra);
  if (!r) return r;
  if (is_2xx(r->status)) return r;
  for (int s : also_ok)
    if (r->status == s) return r;
  return fail(api_error(what, r->status, r->body));
}

Result<void> Engine::available() const {
  auto r = expect_ok("ping", call("GET", "/_ping"));
  if (!r) return fail(r.error());
  return {};
}

Result<Json> Engine::get_json(const std::string& what, const std::string& ref, const std::string& path) const {
  if (!ref.empty())
    if (auto ok = check_ref(what, ref); !ok) return fail(ok.error());
  auto r = expect_ok(what, call("GET", path));
  if (!r) return fail(r.error());
  auto j = parse_json(r->body);
  if (!j) return fail(with_context(what, j.error()));
  return j;
}

Result<Json> Engine::version() const { return get_json("version", "", "/version"); }

Result<std::string> Engine::create(const ContainerConfig& cfg) const {
  std::string what = "create container " + (cfg.name.empty() ? cfg.image : cfg.name);
  if (!cfg.name.empty())
    if (auto ok = check_ref(what, cfg.name); !ok) return fail(ok.error());
  auto c = call("POST", "/containers/create" + (cfg.name.empty() ? "" : "?name=" + net::percent_encode(cfg.name)));
  c.body = create_body(cfg).dump();
  auto r = expect_ok(what, c);
  if (!r) return fail(r.error());
  auto j = parse_json(r->body);
  if (!j || !j->is_object() || !(*j)["Id"].is_string()) return fail("docker: " + what + ": answer has no Id");
  return (*j)["Id"].get<std::string>();
}

Result<void> Engine::command(const std::string& what, const std::string& ref, const HttpCall& c,
                             std::initializer_list<int> also_ok, std::chrono::milliseconds extra) const {
  if (auto ok = check_ref(what, ref); !ok) return ok;
  auto r = expect_ok(what, c, also_ok, extra);
  if (!r) return fail(r.error());
  return {};
}

Result<void> Engine::start(const std::string& ref) const {
  return command("start container " + ref, ref, call("POST", "/containers/" + ref + "/start"), {304});
}

Result<void> Engine::stop(const std::string& ref, int grace_s) const {
  auto c = call("POST", "/containers/" + ref + "/stop?t=" + std::to_string(grace_s));
  return command("stop container " + ref, ref, c, {304}, std::chrono::seconds(grace_s));
}

Result<void> Engine::kill(const std::string& ref, int sig) const {
  auto c = call("POST", "/containers/" + ref + "/kill?signal=" + std::to_string(sig));
  return command("kill container " + ref, ref, c);
}

Result<void> Engine::remove(const std::string& ref, bool force) const {
  return command("remove container " + ref, ref, call("DELETE", "/containers/" + ref + "?v=1&force=" + flag(force)));
}

Result<ContainerInfo> Engine::inspect(const std::string& ref) const {
  auto j = get_json("inspect container " + ref, ref, "/containers/" + ref + "/json");
  if (!j) return fail(j.error());
  return parse_container_info(*j);
}

Result<std::vector<ContainerSummary>> Engine::list(const std::vector<std::string>& labels) const {
  auto j = get_json("list containers", "", "/containers/json?all=1&filters=" + net::percent_encode(label_filters(labels)));
  if (!j) return fail(j.error());
  return parse_container_list(*j);
}

Result<int> Engine::wait(const std::string& ref, Deadline deadline) const {
  std::string what = "wait for container " + ref;
  if (auto ok = check_ref(what, ref); !ok) return fail(ok.error());
  auto r = http_.exchange(call("POST", "/containers/" + ref + "/wait?condition=not-running"), deadline);
  if (!r) return fail(with_context(what, r.error()));
  if (!is_2xx(r->status)) return fail(api_error(what, r->status, r->body));
  auto j = parse_json(r->body);
  if (!j || !j->is_object() || !(*j)["StatusCode"].is_number_integer())
    return fail("docker: " + what + ": answer has no StatusCode");
  return (*j)["StatusCode"].get<int>();
}

Result<void> Engine::output_stream(const std::string& what, HttpCall c, const LogsOptions& o,
                                   const OutputSink& on_output) const {
  FrameDecoder frames;
  bool stopped = false;
  Result<void> decoded;
  auto deliver = [&](StreamKind k, std::string_view data) {
    if (!stopped && !on_output(k, data)) stopped = true;
  };
  auto r = http_.stream(c, o.deadline, [&](std::string_view piece) {
    if (o.tty) deliver(StreamKind::kStdout, piece);
    else decoded = frames.feed(piece, deliver);
    return decoded && !stopped;
  });
  if (!r) return fail(with_context(what, r.error()));
  if (!is_2xx(r->status)) return fail(api_error(what, r->status, r->body));
  if (!decoded) return fail(with_context(what, decoded.error()));
  return {};
}

Result<void> Engine::logs(const std::string& ref, const LogsOptions& o, const OutputSink& on_output) const {
  std::string what = "logs of container " + ref;
  if (auto ok = check_ref(what, ref); !ok) return ok;
  std::string q = "?follow=" + flag(o.follow) + "&stdout=" + flag(o.stdout_stream) + "&stderr=" + flag(o.stderr_stream);
  if (!o.since.empty()) q += "&since=" + net::percent_encode(o.since);
  return output_stream(what, call("GET", "/containers/" + ref + "/logs" + q), o, on_output);
}

Result<void> Engine::attach(const std::string& ref, const LogsOptions& o, const OutputSink& on_output) const {
  std::string what = "attach to container " + ref;
  if (auto ok = check_ref(what, ref); !ok) return ok;
  std::string q = "?stream=1&stdout=" + flag(o.stdout_stream) + "&stderr=" + flag(o.stderr_stream);
  return output_stream(what, call("POST", "/containers/" + ref + "/attach" + q), o, on_output);
}

Result<std::string> Engine::exec_create(const std::string& ref, const ExecConfig& e) const {
  std::string what = "exec in container " + ref;
  if (auto ok = check_ref(what, ref); !ok) return fail(ok.error());
  if (e.cmd.empty()) return fail("docker: " + what + ": no command to run", 400);
  Json body = {{"Cmd", e.cmd}, {"AttachStdout", true}, {"AttachStderr", true}};
  if (!e.user.empty()) body["User"] = e.user;
  if (!e.env.empty()) body["Env"] = e.env;
  auto c = call("POST", "/containers/" + ref + "/exec");
  c.body = body.dump();
  auto r = expect_ok(what, c);
  if (!r) return fail(r.error());
  auto j = parse_json(r->body);
  if (!j || !j->is_object() || !(*j)["Id"].is_string()) return fail("docker: " + what + ": answer has no Id");
  return (*j)["Id"].get<std::string>();
}

Result<void> Engine::exec_start(const std::string& id, Deadline deadline, const OutputSink& on_output) const {
  std::string what = "start exec " + id;
  if (auto ok = check_ref(what, id); !ok) return ok;
  auto c = call("POST", "/exec/" + id + "/start");
  c.body = Json{{"Detach", false}, {"Tty", false}}.dump();
  LogsOptions o;
  o.deadline = deadline;
  return output_stream(what, c, o, on_output);
}

Result<ExecInfo> Engine::exec_inspect(const std::string& id) const {
  std::string what = "inspect exec " + id;
  auto j = get_json(what, id, "/exec/" + id + "/json");
  if (!j) return fail(j.error());
  if (!j->is_object() || !(*j)["Running"].is_boolean()) return fail("docker: " + what + ": answer has no Running");
  ExecInfo info;
  info.running = (*j)["Running"].get<bool>();
  if ((*j)["ExitCode"].is_number_integer()) info.exit_code = (*j)["ExitCode"].get<int>();
  if ((*j)["Pid"].is_number_integer()) info.pid = (*j)["Pid"].get<int>();
  if (info.running) info.exit_code = -1;
  else info.pid = 0;
  return info;
}

Result<void> Engine::json_stream(const std::string& what, const HttpCall& c, Deadline deadline,
                                 const std::function<void(Json)>& on_json, const std::function<bool()>& stop) const {
  JsonLinesDecoder lines;
  Result<void> decoded;
  auto r = http_.stream(c, deadline, [&](std::string_view piece) {
    decoded = lines.feed(piece, on_json);
    return decoded && !stop();
  });
  if (!r) return fail(with_context(what, r.error()));
  if (!is_2xx(r->status)) return fail(api_error(what, r->status, r->body));
  if (decoded && !stop()) decoded = lines.finish(on_json);
  if (!decoded) return fail(with_context(what, decoded.error()));
  return {};
}

Result<void> Engine::events(const std::vector<std::string>& labels, const std::string& since,
                            const std::string& until, Deadline deadline, const EventSink& on_event) const {
  std::string q = "?filters=" + net::percent_encode(label_filters(labels, "container"));
  if (!since.empty()) q += "&since=" + net::percent_encode(since);
  if (!until.empty()) q += "&until=" + net::percent_encode(until);
  bool stopped = false;
  auto on_json = [&](Json j) {
    if (!stopped && !on_event(j)) stopped = true;
  };
  return json_stream("events", call("GET", "/events" + q), deadline, on_json, [&] { return stopped; });
}

Result<ImageInfo> Engine::inspect_image(const std::string& ref) const {
  auto j = get_json("inspect image " + ref, ref, "/images/" + ref + "/json");
  if (!j) return fail(j.error());
  return parse_image_info(*j);
}

Result<bool> Engine::image_exists(const std::string& ref) const {
  auto r = inspect_image(ref);
  if (r) return true;
  if (r.error().code == 404) return false;
  return fail(r.error());
}

Result<void> Engine::remove_image(const std::string& ref, bool force) const {
  return command("remove image " + ref, ref, call("DELETE", "/images/" + ref + "?force=" + flag(force)));
}

Result<void> Engine::save(const std::string& ref, const std::string& tar_path, Deadline deadline) const {
  std::string what = "save image " + ref;
  if (auto ok = check_ref(what, ref); !ok) return ok;
  std::string tmp = tar_path + ".part";
  Fd out{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
  if (out.fd < 0) return fail("docker: " + what + ": cannot create " + tmp + ": " + std::strerror(errno));
  Result<void> written;
  auto r = http_.stream(call("GET", "/images/" + ref + "/get"), deadline, [&](std::string_view piece) {
    written = write_all(out.fd, piece);
    return bool(written);
  });
  Result<void> outcome;
  if (!r) outcome = fail(with_context(what, r.error()));
  else if (!is_2xx(r->status)) outcome = fail(api_error(what, r->status, r->body));
  else if (!written) outcome = fail("docker: " + what + ": writing " + tmp + ": " + written.error().message);
  else if (::fsync(out.fd) != 0 || ::rename(tmp.c_str(), tar_path.c_str()) != 0)
    outcome = fail("docker: " + what + ": cannot finish " + tar_path + ": " + std::strerror(errno));
  if (!outcome) ::unlink(tmp.c_str());
  return outcome;
}

Result<void> Engine::pull(const std::string& ref, Deadline deadline) const {
  std::string what = "pull image " + ref;
  if (auto ok = check_ref(what, ref); !ok) return fail(ok.error());
  std::string name = ref, tag = "latest";
  auto colon = ref.rfind(':');
  if (colon != std::string::npos && ref.find('/', colon) == std::string::npos) {
    name = ref.substr(0, colon);
    tag = ref.substr(colon + 1);
  }
  std::string error;
  auto on_json = [&](Json j) {
    if (j.is_object() && j.contains("error") && j["error"].is_string() && error.empty()) error = j["error"].get<std::string>();
  };
  auto c = call("POST", "/images/create?fromImage=" + net::percent_encode(name) + "&tag=" + net::percent_encode(tag));
  if (auto r = json_stream(what, c, deadline, on_json, [] { return false; }); !r) return r;
  if (!error.empty()) return fail("docker: " + what + ": " + error);
  return {};
}

Result<std::string> Engine::load(const std::string& tar_path, Deadline deadline) const {
  std::string what = "load image from " + tar_path;
  auto c = call("POST", "/images/load?quiet=1");
  c.body_file = tar_path;
  c.content_type = "application/x-tar";
  auto r = http_.exchange(c, deadline);
  if (!r) return fail(with_context(what, r.error()));
  if (!is_2xx(r->status)) return fail(api_error(what, r->status, r->body));
  LoadedImage loaded;
  JsonLinesDecoder lines;
  auto on_json = [&](Json j) { on_load_message(j, loaded); };
  auto decoded = lines.feed(r->body, on_json);
  if (decoded) decoded = lines.finish(on_json);
  if (!decoded) return fail(with_context(what, decoded.error()));
  if (!loaded.error.empty()) return fail("docker: " + what + ": " + loaded.error);
  if (!loaded.id.empty()) return loaded.id;
  if (loaded.name.empty()) return fail("docker: " + what + ": the engine named no loaded image");
  auto image = inspect_image(loaded.name);
  if (!image) return fail(image.error());
  return image->id;
}

Result<std::string> Engine::build(const BuildOptions& b, const std::function<void(std::string_view)>& on_line) const {
  std::string what = "build " + (b.tag.empty() ? b.context_dir : b.tag);
  if (!b.tag.empty())
    if (auto ok = check_ref(what, b.tag); !ok) return fail(ok.error());
  std::string tar = b.scratch_dir + "/stele-build-XXXXXX";
  int fd = ::mkstemp(tar.data());
  if (fd < 0) return fail("docker: " + what + ": cannot create a file in " + b.scratch_dir + ": " + std::strerror(errno));
  ::close(fd);
  auto ctx = write_build_context(b.context_dir, tar);
  if (!ctx) return ::unlink(tar.c_str()), fail(with_context(what, ctx.error()));
  std::string q = "?networkmode=host&rm=1&forcerm=1&dockerfile=" + net::percent_encode(b.dockerfile);
  if (!b.tag.empty()) q += "&t=" + net::percent_encode(b.tag);
  if (b.memory_bytes > 0) q += "&memory=" + std::to_string(b.memory_bytes) + "&memswap=" + std::to_string(b.memory_bytes);
  if (b.cpu_shares > 0) q += "&cpushares=" + std::to_string(b.cpu_shares);
  if (!b.labels.empty()) q += "&labels=" + net::percent_encode(Json(b.labels).dump());
  auto c = call("POST", "/build" + q);
  c.body_file = tar;
  c.content_type = "application/x-tar";
  BuildProgress progress(on_line);
  auto on_json = [&](Json j) { progress.on_message(j); };
  auto streamed = json_stream(what, c, b.deadline, on_json, [] { return false; });
  ::unlink(tar.c_str());
  if (!streamed) return fail(streamed.error());
  auto id = progress.finish();
  if (!id) return fail(with_context(what, id.error()));
  return id;
}

}  // namespace stele::docker
