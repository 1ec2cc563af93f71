"""Backup and restore (docs/architecture.md "Backup and restore"): `stele
backup` of a running `stele up` (an app pushed through git twice, a second
from the Marathon API), `stele restore` into a fresh data dir, and a `stele
up` on it serves the same apps, releases, artifacts and git refs; a rollback
to the earlier release deploys its restored artifact. A corrupted backup and
a non-empty target dir are refused.

Run: STELE_BIN=build/stele python3 tests/integration/test_backup.py -v
Task ports: 32580-32599.
"""

import json
import os
import subprocess
import sys
import tarfile

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from stelelib import STELE, SteleTestCase, http, sample_app, wait_until  # noqa: E402
import test_pipeline  # noqa: E402  (not its TestCase by name: unittest would run its tests here)
from test_pipeline import NAME, PUSH_TIMEOUT  # noqa: E402

OTHER = "/other"


class BackupTest(SteleTestCase):
    # The pipeline test's helpers (start, push_ok, releases, ...), not its tests.
    start = test_pipeline.PipelineTest.start
    stele = test_pipeline.PipelineTest.stele
    token = test_pipeline.PipelineTest.token
    create_and_clone = test_pipeline.PipelineTest.create_and_clone
    releases = test_pipeline.PipelineTest.releases
    release = test_pipeline.PipelineTest.release
    push_ok = test_pipeline.PipelineTest.push_ok
    current = test_pipeline.PipelineTest.current

    def state(self):
        """What must survive: apps, and each release's number, status and artifact."""
        apps = sorted(a["id"] for a in self.api.get("/api/v1/apps")["apps"])
        rels = {n: (r["status"], r.get("artifact")) for n, r in self.releases().items()}
        other = self.api.get("/v2/apps%s" % OTHER)["app"]
        return apps, rels, (other["cmd"], other["instances"])

    def event_count(self):
        return len(self.api.get("/api/v1/events?limit=100000")["events"])

    def ls_remote(self):
        url = "%s/git/%s.git" % (self.up.url, NAME)
        tok = self.token()
        extra = ["-c", "http.extraHeader=Authorization: Bearer %s" % tok] if tok else []
        r = subprocess.run(["git"] + extra + ["ls-remote", url], capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, GIT_TERMINAL_PROMPT="0"), stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0, r.stderr)
        return sorted(r.stdout.splitlines())

    def restore(self, *args, check=True):
        return self.h.run([STELE, "restore"] + list(args), check=check, timeout=120)

    def test_backup_then_restore_into_fresh_data_dir(self):
        self.start("32580-32589")
        repo = self.create_and_clone()
        n1, _ = self.push_ok(repo, "first version")
        tpl = repo.read("templates/index.html.in").replace("Hello from Stele", "Hello again from Stele")
        repo.write("templates/index.html.in", tpl)
        repo.commit("hello: new page")
        n2, _ = self.push_ok(repo, "new page")
        self.api.post("/v2/apps", sample_app(OTHER, 1))
        before = self.state()
        events_before = self.event_count()
        refs_before = self.ls_remote()
        self.assertEqual(len({r[1] for r in before[1].values()}), 2, before)

        # Without the token the backup is refused (it holds the apps' environments).
        status, _ = http("GET", self.up.url + "/api/v1/backup")
        self.assertEqual(status, 401)

        backup = self.h.path("backup.tar")
        r = self.stele("backup", backup, timeout=300)
        self.assertIn("2 app(s)", r.stdout)
        self.assertFalse(os.path.exists(backup + ".partial"))
        with tarfile.open(backup) as t:
            names = t.getnames()
        self.assertEqual(names[-1], "manifest.json")
        self.assertIn("state/state.db", names)
        self.assertIn("git/%s.bundle" % NAME, names)
        for _, artifact in before[1].values():
            self.assertIn("artifacts/sha256/" + artifact, names)

        self.up.proc.stop()
        self.h.run([STELE, "down", "--data-dir", self.up.data_dir], timeout=60)

        # A flipped byte in the state's data: refused, naming the member, nothing written.
        with tarfile.open(backup) as t:
            offset = t.getmember("state/state.db").offset_data + 100
        with open(backup, "rb") as f:
            data = bytearray(f.read())
        data[offset] ^= 0xFF
        bad = self.h.path("bad.tar")
        with open(bad, "wb") as f:
            f.write(data)
        fresh = os.path.join(self.h.tmp, "restored")
        r = self.restore(bad, "--data-dir", fresh, "--up", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("state/state.db", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(fresh, "server", "state.db")))

        # Into a non-empty dir: refused.
        r = self.restore(backup, "--data-dir", self.up.data_dir, "--up", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("not empty", r.stderr)

        r = self.restore(backup, "--data-dir", fresh, "--up", "--json")
        self.assertEqual(json.loads(r.stdout)["counts"]["apps"], 2, r.stdout)

        self.h.task_roots.append(fresh)
        self.up = self.h.up("32590-32599", name="restored")
        self.api = self.up.api
        self.cli = [STELE, "--api", self.up.url, "--data-dir", self.up.data_dir]
        self.assertEqual(self.state(), before)
        self.assertGreaterEqual(self.event_count(), events_before)
        self.assertEqual(self.ls_remote(), refs_before)

        # Rollback to release 1: its artifact came back with the backup.
        wait_until(lambda: self.current() == n2, 30, "release %d current" % n2)
        self.stele("rollback", NAME, "--wait", timeout=PUSH_TIMEOUT)
        rb = self.release(self.current())
        self.assertEqual(rb["number"], n1, rb)
        self.assertEqual(rb["artifact"], before[1][n1][1])


if __name__ == "__main__":
    import unittest
    unittest.main()
