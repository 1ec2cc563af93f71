#include "cli/run_stream.h"

#include "cli/fields.h"
#include "common/json.h"

namespace stele::cli {

namespace {

constexpr size_t kOtherLimit = 64 * 1024;

bool shell_safe(const std::string& a) {
  if (a.empty()) return false;
  for (unsigned char c : a) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              std::string_view("_-./:=,+@%").find(static_cast<char>(c)) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

std::string shell_quote(const std::string& a) {
  if (shell_safe(a)) return a;
  std::string out = "'";
  for (char c : a) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

std::string command_line(const std::vector<std::string>& argv) {
  if (argv.size() == 1) return argv[0];
  std::string out;
  for (const auto& a : argv) out += (out.empty() ? "" : " ") + shell_quote(a);
  return out;
}

void RunStreamDecoder::feed(std::string_view bytes) {
  partial_.append(bytes);
  size_t start = 0;
  for (size_t nl; (nl = partial_.find('\n', start)) != std::string::npos; start = nl + 1)
    line(std::string_view(partial_).substr(start, nl - start));
  partial_.erase(0, start);
}

void RunStreamDecoder::finish() {
  if (!partial_.empty()) line(partial_);
  partial_.clear();
}

int RunStreamDecoder::exit_status() const {
  if (!code_ || *code_ < 0 || *code_ > 255) return 1;
  return *code_;
}

void RunStreamDecoder::line(std::string_view l) {
  if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
  if (l.empty() || exited()) return;
  auto j = parse_json(l);
  std::string type = j ? field_str(*j, "type") : "";
  if (type == "output") {
    std::string data = field_str(*j, "data");
    if (!data.empty()) on_output_(data);
  } else if (type == "exit") {
    code_ = static_cast<int>(field_int(*j, "code", 1));
    reason_ = field_str(*j, "reason");
  } else if (!type.empty()) {
    // Another event of the stream ("started" names the task): nothing to show.
  } else if (other_.size() < kOtherLimit) {
    other_.append(l.substr(0, kOtherLimit - other_.size()));
    other_ += '\n';
  }
}

}  // namespace stele::cli
