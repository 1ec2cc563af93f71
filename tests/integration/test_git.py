"""The git front end (docs/pipeline.md "Flow"): stock git clones, pushes and
fetches app repositories at /git/<app name>.git through a real `stele
server`; the post-receive hook's output reaches the pusher's terminal;
unknown apps are 404; off loopback the token is the Basic-auth password.

Run: STELE_BIN=build/stele python3 tests/integration/test_git.py -v
Ports: 32100 (the server inside a network namespace the test makes).
"""

import base64
import os
import re
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import stelelib  # noqa: E402
from stelelib import STELE, Api, SteleTestCase, http, wait_until  # noqa: E402

APP = {"id": "/shop/web", "cmd": "sleep 1000", "cpus": 0.1, "mem": 32, "instances": 0}
# A hook line: the hook's own explanation or a line of the pipeline's log.
HOOK_LINE = re.compile(r"^remote: (stele:|----->|=====>|!!!!!>)", re.M)


class NetnsHost:
    """A network namespace this test makes, joined to the root namespace by a
    veth pair it addresses itself (10.213.77.1 here, 10.213.77.2 inside): a
    server inside sees the test's requests from a non-loopback peer, and no
    traffic leaves the two ends of the pair."""

    def __init__(self):
        self.name = "stele-git-%d" % os.getpid()
        self.outer, self.inner = "10.213.77.1", "10.213.77.2"
        host_if, ns_if = "sg%do" % (os.getpid() % 100000), "sg%di" % (os.getpid() % 100000)
        self.cleanup()
        for cmd in (["ip", "netns", "add", self.name],
                    ["ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if],
                    ["ip", "link", "set", ns_if, "netns", self.name],
                    ["ip", "addr", "add", self.outer + "/30", "dev", host_if],
                    ["ip", "link", "set", host_if, "up"],
                    ["ip", "netns", "exec", self.name, "ip", "addr", "add", self.inner + "/30", "dev", ns_if],
                    ["ip", "netns", "exec", self.name, "ip", "link", "set", ns_if, "up"],
                    ["ip", "netns", "exec", self.name, "ip", "link", "set", "lo", "up"]):
            subprocess.run(cmd, check=True, capture_output=True)

    def cleanup(self):
        # Deleting the namespace deletes its end of the pair, and with it ours.
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


class GitTest(SteleTestCase):

    def setUp(self):
        super().setUp()
        self.home = self.h.path("home", "x")[:-2]
        os.makedirs(self.home, exist_ok=True)

    def git(self, *args, cwd=None, check=True, timeout=120):
        """Stock git with a clean config and no prompts; returns CompletedProcess."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.home, "GIT_CONFIG_NOSYSTEM": "1",
               "GIT_TERMINAL_PROMPT": "0", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
        r = subprocess.run(["git"] + list(args), cwd=cwd, env=env, capture_output=True, text=True,
                           timeout=timeout, stdin=subprocess.DEVNULL)
        with open(os.path.join(self.h.logdir, "git.log"), "a") as f:
            f.write("$ git %s\n[exit %d]\n%s%s\n" % (" ".join(args), r.returncode, r.stdout, r.stderr))
        if check and r.returncode != 0:
            raise AssertionError("git %s exited %d:\n%s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
        return r

    def work_repo(self, name="work", stele_json=None):
        """A repository with one commit. Its stele.json deploys another branch
        by default, so pushes of main get a quick answer from the pipeline
        ("not the deploy branch") instead of a build."""
        d = self.h.path(name, "README")
        d = os.path.dirname(d)
        self.git("init", "-q", "-b", "main", d)
        with open(os.path.join(d, "README"), "w") as f:
            f.write("hello\n")
        with open(os.path.join(d, "stele.json"), "w") as f:
            f.write(stele_json or '{"cmd": "sleep 1000", "branch": "production"}\n')
        with open(os.path.join(d, "blob.bin"), "wb") as f:
            f.write(os.urandom(3 * 1024 * 1024))  # > http.postBuffer: a chunked request body
        self.git("add", "-A", cwd=d)
        self.git("commit", "-q", "-m", "first", cwd=d)
        return d

    def head(self, d):
        return self.git("rev-parse", "HEAD", cwd=d).stdout.strip()

    def test_01_push_clone_and_fetch(self):
        server = self.h.server()
        server.api.post("/api/v1/apps", APP)
        url = server.url + "/git/shop_web.git"
        work = self.work_repo()
        sha = self.head(work)

        t0 = time.monotonic()
        push = self.git("push", url, "main", cwd=work)
        self.assertRegex(push.stderr, HOOK_LINE, "the post-receive hook's output is not in the push output")
        self.assertLess(time.monotonic() - t0, 90)
        self.assertTrue(os.path.isfile(os.path.join(server.data_dir, "git", "shop_web.git", "HEAD")))
        refs = self.git("ls-remote", url).stdout
        self.assertIn("%s\trefs/heads/main" % sha, refs)

        clone = self.h.path("clone", "x")[:-2]
        self.git("clone", "-q", url, clone)
        self.assertEqual(self.head(clone), sha)
        with open(os.path.join(clone, "README")) as f:
            self.assertEqual(f.read(), "hello\n")
        with open(os.path.join(work, "blob.bin"), "rb") as a, open(os.path.join(clone, "blob.bin"), "rb") as b:
            self.assertTrue(a.read() == b.read(), "blob.bin differs after the round trip")

        # A second push, fetched into the clone (protocol v0 and v2 both served).
        with open(os.path.join(work, "README"), "a") as f:
            f.write("more\n")
        self.git("commit", "-q", "-am", "second", cwd=work)
        sha2 = self.head(work)
        push2 = self.git("push", url, "main", cwd=work)
        self.assertRegex(push2.stderr, HOOK_LINE)
        self.git("-c", "protocol.version=0", "fetch", "-q", "origin", cwd=clone)
        self.assertEqual(self.git("rev-parse", "origin/main", cwd=clone).stdout.strip(), sha2)
        self.git("-c", "protocol.version=2", "pull", "-q", "--ff-only", cwd=clone)
        self.assertEqual(self.head(clone), sha2)

        # The app's id with its slash works as the URL too (/git/shop_web without .git).
        self.assertIn(sha2, self.git("ls-remote", server.url + "/git/shop_web").stdout)

    def test_02_unknown_app_is_404(self):
        server = self.h.server()
        status, body = http("GET", server.url + "/git/nope.git/info/refs?service=git-upload-pack")
        self.assertEqual(status, 404)
        self.assertIn("no app named 'nope'", body)
        r = self.git("ls-remote", server.url + "/git/nope.git", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("not found", r.stderr)
        r = self.git("push", server.url + "/git/nope.git", "main", cwd=self.work_repo(), check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertFalse(os.path.exists(os.path.join(server.data_dir, "git", "nope.git")))
        # Only the smart protocol's three calls are served.
        server.api.post("/api/v1/apps", APP)
        status, _ = http("GET", server.url + "/git/shop_web.git/HEAD")
        self.assertEqual(status, 404)

    def test_03_off_loopback_the_token_is_the_password(self):
        if os.geteuid() != 0:
            self.skipTest("needs root for ip netns (CI runs as root)")
        ns = NetnsHost()
        self.addCleanup(ns.cleanup)
        addr, port = ns.inner, 32100
        data = os.path.join(self.h.tmp, "server")
        token = "s3cret-token"
        proc = self.h.spawn("server", ["ip", "netns", "exec", ns.name, STELE, "server", "--router-listen", "off", "--data-dir", data,
                                       "--listen", "%s:%d" % (addr, port), "--token", token])
        base = "http://%s:%d" % (addr, port)
        wait_until(lambda: Api(base).ping() or (not proc.alive() and self.fail(proc.output()[-2000:])), 15,
                   "server on %s" % base)
        status, _ = http("POST", base + "/api/v1/apps", APP, headers={"Authorization": "Bearer " + token})
        self.assertEqual(status, 201)

        status, body = http("GET", base + "/git/shop_web.git/info/refs?service=git-receive-pack")
        self.assertEqual(status, 401)
        self.assertIn("token", body)
        resp_headers = self._headers(base + "/git/shop_web.git/info/refs?service=git-upload-pack")
        self.assertEqual(resp_headers.get("www-authenticate"), 'Basic realm="stele"')
        wrong = base64.b64encode(b"git:wrong").decode()
        status, _ = http("GET", base + "/git/shop_web.git/info/refs?service=git-upload-pack",
                         headers={"Authorization": "Basic " + wrong})
        self.assertEqual(status, 401)

        work = self.work_repo()
        r = self.git("push", base + "/git/shop_web.git", "main", cwd=work, check=False)
        self.assertNotEqual(r.returncode, 0, "a push without the token was accepted")
        authed = "http://git:%s@%s:%d/git/shop_web.git" % (token, addr, port)
        push = self.git("push", authed, "main", cwd=work)
        self.assertRegex(push.stderr, HOOK_LINE)
        # The hook reached the API with the token (no 401 explanation).
        self.assertNotIn("HTTP 401", push.stderr)
        self.assertIn(self.head(work), self.git("ls-remote", authed).stdout)

    def test_04_push_of_the_deploy_branch_streams_the_release_log(self):
        server = self.h.server()
        server.api.post("/api/v1/apps", APP)
        # An invalid stele.json: the release fails at once, its log ends the push output.
        work = self.work_repo(stele_json='{"cmd": "sleep 1000", "build": {"cmnd": "make"}}\n')
        push = self.git("push", server.url + "/git/shop_web.git", "main", cwd=work, check=False)
        self.assertTrue(server.proc.alive(), "the server died during the push:\n" + server.proc.output()[-3000:])
        self.assertEqual(push.returncode, 0, push.stderr)
        self.assertRegex(push.stderr, HOOK_LINE)
        self.assertRegex(push.stderr, r"remote: =====> release \d+ failed")

    def test_05_hook_output_is_streamed_while_the_hook_runs(self):
        server = self.h.server()
        server.api.post("/api/v1/apps", APP)
        url = server.url + "/git/shop_web.git"
        work = self.work_repo()
        self.git("push", "-q", url, "main", cwd=work)
        # A slow hook in place of Stele's (core.hooksPath: the server rewrites only its own script).
        hooks = os.path.dirname(self.h.path("slowhooks", "post-receive"))
        with open(os.path.join(hooks, "post-receive"), "w") as f:
            f.write("#!/bin/sh\ncat >/dev/null\necho step-one\nsleep 3\necho step-two\n")
        os.chmod(os.path.join(hooks, "post-receive"), 0o755)
        self.git("--git-dir=" + os.path.join(server.data_dir, "git", "shop_web.git"), "config", "core.hooksPath", hooks)
        with open(os.path.join(work, "README"), "a") as f:
            f.write("again\n")
        self.git("commit", "-q", "-am", "again", cwd=work)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.home, "GIT_TERMINAL_PROMPT": "0"}
        p = subprocess.Popen(["git", "push", "--progress", url, "main"], cwd=work, env=env, stderr=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        seen = {}
        for raw in iter(p.stderr.readline, b""):
            for part in raw.decode(errors="replace").replace("\r", "\n").splitlines():
                for step in ("step-one", "step-two"):
                    if step in part and step not in seen:
                        seen[step] = time.monotonic()
        p.stderr.close()
        self.assertEqual(p.wait(60), 0)
        self.assertEqual(sorted(seen), ["step-one", "step-two"])
        self.assertGreater(seen["step-two"] - seen["step-one"], 2.0,
                           "the hook's first line reached the pusher only when the hook ended")

    def _headers(self, url):
        import urllib.error
        import urllib.request
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                return {k.lower(): v for k, v in r.headers.items()}
        except urllib.error.HTTPError as e:
            return {k.lower(): v for k, v in e.headers.items()}


if __name__ == "__main__":
    stelelib.main()
