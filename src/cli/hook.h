// `stele hook post-receive`: the post-receive hook of the server's bare
// repositories (GitRepos writes the script that execs it). It hands the
// pushed refs to the pipeline — POST {STELE_HOOK_URL}/api/v1/hooks/receive
// {"app", "updates": [{"before", "after", "ref"}]} with the token as every
// CLI call sends it — and copies the streamed answer (the release log) to
// stdout as it arrives, which git shows in the pusher's terminal as
// "remote: ..." lines.
//
// The refs are already accepted when the hook runs, so it always exits 0:
// failures (no server, an error answer) are one explanatory line.
#pragma once
#include <cstdio>
#include <istream>
#include <string>
#include <string_view>
#include <vector>

#include "cli/api_client.h"
#include "common/json.h"
#include "common/result.h"

namespace stele::cli {

struct PushedRef {
  std::string before, after, ref;
};

// git's post-receive input: one "<old> <new> <ref>" line per updated ref.
// Blank lines are skipped; any other malformed line is an error naming it.
Result<std::vector<PushedRef>> parse_post_receive_input(std::string_view input);

// The body of POST /api/v1/hooks/receive.
Json receive_request(const std::string& app_id, const std::vector<PushedRef>& refs);

// The hook with its inputs explicit: STELE_HOOK_URL, STELE_HOOK_TOKEN and
// STELE_HOOK_APP from `env`, ref lines from `in`, everything it says to
// `out` (flushed per piece). Returns 0.
int run_post_receive_hook(const EnvLookup& env, std::istream& in, FILE* out);

// `stele hook <name>` from main (argv[1] == "hook").
int hook_main(int argc, char** argv);

}  // namespace stele::cli
