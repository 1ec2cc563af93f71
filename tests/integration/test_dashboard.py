#!/usr/bin/env python3
"""The dashboard end to end: a real `stele up` with examples/hello pushed
twice (the second release sets a greeting in its spec), then
tests/ui/dashboard.mjs drives Debian's Chromium through playwright-core:
overview, invalid and valid scale, log tail, charts, releases and spec diff,
rollback, the token prompt, nodes, checks, metrics explorer, events. A
screenshot of every page goes to $STELE_UI_ARTIFACTS (default
test-artifacts/ui beside $STELE_BIN, so build/test-artifacts/ui for build/stele).

Needs /usr/bin/chromium and `npm ci` in tests/ui (scripts/bootstrap does both).
Run: STELE_BIN=build/stele python3 tests/integration/test_dashboard.py -v
Ports: 32400-32439 (API 32400, router 32401, forward 32402, graphite 32403, tasks 32410-32439).
"""
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import stelelib  # noqa: E402
from stelelib import STELE, SteleTestCase, wait_until  # noqa: E402
import test_pipeline as pipeline  # noqa: E402  (Repo: examples/hello in a git work tree)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
UI_TESTS = os.path.join(ROOT, "tests", "ui")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Beside the binary under test: build/test-artifacts/ui for build/stele.
ARTIFACTS = os.environ.get("STELE_UI_ARTIFACTS") or os.path.join(os.path.dirname(STELE), "test-artifacts", "ui")
API_PORT, ROUTER_PORT, FORWARD_PORT, GRAPHITE_PORT = 32400, 32401, 32402, 32403
TASK_PORTS = "32410-32439"
NAME, APP = "hello", "/hello"
MARKER = "greetings from the second release"


def fetch(url, headers=None):
    """(status, headers with lower-case names, body bytes) of a GET; redirects not followed."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=10) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


class DashboardTest(SteleTestCase):

    def assert_serves_the_ui(self, url):
        """/ -> /ui/; index.html for the SPA's routes, revalidated; hashed assets cached
        for good, gzipped when asked; a missing asset is a 404."""
        status, hdrs, _ = fetch(url + "/")
        self.assertEqual((status, hdrs.get("location")), (302, "/ui/"))
        status, hdrs, index = fetch(url + "/ui/apps/hello", {"Accept-Encoding": "identity"})
        self.assertEqual(status, 200)
        self.assertEqual(hdrs["content-type"], "text/html; charset=utf-8")
        self.assertEqual(hdrs["cache-control"], "no-cache")
        self.assertNotIn("content-encoding", hdrs)
        status, _, _ = fetch(url + "/ui/", {"If-None-Match": hdrs["etag"]})
        self.assertEqual(status, 304)
        names = re.findall(r'(?:src|href)="/ui/([^"]+)"', index.decode())
        self.assertEqual(len(names), 2, index)
        for name in names:
            status, h, body = fetch(url + "/ui/" + name, {"Accept-Encoding": "gzip, deflate"})
            self.assertEqual(status, 200, name)
            self.assertEqual(h.get("content-encoding"), "gzip", name)
            self.assertIn("immutable", h["cache-control"])
            self.assertEqual(h["content-type"].split(";")[0], "text/javascript" if name.endswith(".js") else "text/css")
            self.assertEqual(body[:2], b"\x1f\x8b")
        status, _, _ = fetch(url + "/ui/app-0000000000.js")
        self.assertEqual(status, 404)

    def start_up(self):
        data = os.path.join(self.h.tmp, "up")
        self.h.task_roots.append(data)
        up = stelelib.Up(self.h, "up", data, API_PORT, TASK_PORTS, [],
                         {"forward_port": FORWARD_PORT, "graphite_port": GRAPHITE_PORT,
                          "router_port": ROUTER_PORT, "metrics_interval": 1})
        return up.start()

    def stele(self, *args, timeout=120):
        return self.h.run([STELE, "--api", self.up.url, "--data-dir", self.up.data_dir] + list(args), timeout=timeout)

    def push(self, repo, what):
        """git push; waits for the new release to be ready and serving on 2 healthy instances."""
        before = {r["number"] for r in self.up.api.get("/api/v1/apps/%s/releases" % NAME)["releases"]}
        rc, out = repo.push()
        self.assertEqual(rc, 0, "git push (%s):\n%s" % (what, out))
        rels = self.up.api.get("/api/v1/apps/%s/releases" % NAME)["releases"]
        n = max(r["number"] for r in rels if r["number"] not in before)

        def deployed():
            a = self.up.api.app(APP)
            ts = [t for t in pipeline.healthy_service_tasks(self.up.api) if t["release"] == n]
            return a["release"] == n and not a["deployment"] and len(ts) == 2
        wait_until(deployed, pipeline.PUSH_TIMEOUT, "release %d (%s) deployed" % (n, what))
        return n

    def test_dashboard(self):
        self.assertTrue(os.access(CHROMIUM, os.X_OK), "%s missing: scripts/bootstrap installs chromium" % CHROMIUM)
        self.assertTrue(os.path.isdir(os.path.join(UI_TESTS, "node_modules", "playwright-core")),
                        "tests/ui has no node_modules: scripts/bootstrap runs npm ci there")
        self.up = self.start_up()
        self.assert_serves_the_ui(self.up.url)
        out = self.stele("create", NAME).stdout
        remote = re.search(r"git remote add stele (\S+)", out).group(1)
        repo = pipeline.Repo(self.h)
        repo.git("remote", "add", "stele", remote)
        old = self.push(repo, "first version")
        repo.edit_json("stele.json", lambda spec: spec.setdefault("env", {}).update({"GREETING": MARKER}))
        repo.commit("hello: a greeting")
        new = self.push(repo, "greeting")

        # Some routed requests, so the request charts have something to draw.
        for _ in range(20):
            req = urllib.request.Request("http://127.0.0.1:%d/" % ROUTER_PORT, headers={"Host": "hello.localhost"})
            try:
                urllib.request.urlopen(req, timeout=2).read()
            except OSError:
                pass

        env = dict(os.environ, STELE_URL=self.up.url, STELE_APP=APP, STELE_OLD_RELEASE=str(old),
                   STELE_NEW_RELEASE=str(new), STELE_NEW_MARKER=MARKER, STELE_UI_ARTIFACTS=ARTIFACTS,
                   CHROMIUM=CHROMIUM)
        r = subprocess.run(["node", os.path.join(UI_TESTS, "dashboard.mjs")], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=480)
        sys.stderr.write(r.stdout + r.stderr)
        self.assertEqual(r.returncode, 0, "dashboard steps failed (screenshots in %s):\n%s%s" % (ARTIFACTS, r.stdout, r.stderr))


if __name__ == "__main__":
    stelelib.main()
