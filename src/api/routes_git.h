// Git smart HTTP at /git/{name}.git/... (docs/pipeline.md "Flow"): each
// request is handed to `git http-backend` as a CGI over s.git's bare
// repositories, and its answer is streamed back as it is produced — on a
// push that includes the post-receive hook's output (the pipeline's live
// log), so the response may last as long as the pipeline.
//
//   GET  /git/{name}.git/info/refs?service=git-upload-pack|git-receive-pack
//   POST /git/{name}.git/git-upload-pack
//   POST /git/{name}.git/git-receive-pack
//
// {name} is an app name (app_name("/shop/web") = "shop_web"; the ".git" is
// optional). No such app → 404; the repository is created on first use.
// Auth: from a non-loopback peer, HTTP Basic with the token as the password
// (any user name) or `Authorization: Bearer <token>`; else 401 with
// `WWW-Authenticate: Basic realm="stele"`. Loopback peers need none.
// Registered by ApiServer when s.git is set; handlers use s.git and s.cluster
// on the server's thread.
#pragma once
#include "api/api_impl.h"

namespace stele::api {

void add_git_routes(net::Router& r, ApiServer::Impl& s);

}  // namespace stele::api
