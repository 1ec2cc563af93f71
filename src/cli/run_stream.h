// The answer of `POST /api/v1/apps/{id}/run` (docs/pipeline.md "CLI"), an
// application/x-ndjson stream: {"type":"output","data":"..."} lines while
// the command runs, then one {"type":"exit","code":N,"reason":"..."}. Events
// of other types (e.g. {"type":"started","task":...}) are skipped.
// Pure; one thread.
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace stele::cli {

// The command line `stele run APP -- CMD...` sends (run with `sh -c`): one
// argument is taken as a shell command line as it is ("ls | wc -l"); several
// are quoted where the shell would split or expand them, so
// `-- sh -c 'echo a; exit 3'` runs exactly that argv.
std::string command_line(const std::vector<std::string>& argv);

class RunStreamDecoder {
 public:
  // Gets the `data` of each output line, in order, as soon as its line is
  // complete.
  using OutputFn = std::function<void(std::string_view)>;
  explicit RunStreamDecoder(OutputFn on_output) : on_output_(std::move(on_output)) {}

  // Bytes as they arrive; a line may be split anywhere.
  void feed(std::string_view bytes);
  // The stream ended: a last line without its newline is decoded too.
  void finish();

  // The exit line, once seen (later lines are ignored).
  bool exited() const { return code_.has_value(); }
  int code() const { return code_.value_or(1); }
  const std::string& reason() const { return reason_; }
  // What `stele run` exits with: the command's code when it is a process
  // exit status (0-255), else 1 (no exit line, or a code out of range).
  int exit_status() const;
  // The start (64 KiB) of lines that were not events of this stream: the
  // body of an error answer, for the message.
  const std::string& other() const { return other_; }

 private:
  void line(std::string_view l);

  OutputFn on_output_;
  std::string partial_;
  std::optional<int> code_;
  std::string reason_;
  std::string other_;
};

}  // namespace stele::cli
