"""The git pipeline end to end (docs/pipeline.md): stock `git push` of
examples/hello to a real `stele up` builds, tests, smoke-tests and deploys
it; failing steps leave the old release serving; rollback, reuse of an
already-built tree, config changes, one-off runs, the webhook's signature
check, build memory limits and the task user.

Run: STELE_BIN=build/stele python3 tests/integration/test_pipeline.py -v
Task ports: 32200-32399 (each test its own 50-port block).
"""

import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import stelelib  # noqa: E402
from stelelib import STELE, SteleTestCase, app_process, http, proc_uid, task_user_uid, wait_until  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.normpath(os.path.join(HERE, "..", "..", "examples", "hello"))
APP = "/hello"
NAME = "hello"
# A push builds, tests, smoke-tests and deploys: generous, the test's own limit is 600 s for the file.
PUSH_TIMEOUT = 180
STEP_TASK = re.compile(r"\.(build|test|smoke|release|run)\.")
WEBHOOK_SECRET = "pipeline-test-secret"


def is_service_task(t):
    """An instance of a release, not a one-off step (build, test, smoke, ...)."""
    return not STEP_TASK.search(t["id"])


def service_tasks(api, states=("staging", "starting", "running")):
    return [t for t in api.tasks(APP) if is_service_task(t) and t["state"] in states]


def healthy_service_tasks(api):
    return [t for t in service_tasks(api, ("running",)) if t.get("healthy")]


def page(task, timeout=2.0):
    port = (task.get("ports") or [None])[0]
    if not port:
        return None
    try:
        return stelelib.get_text("http://127.0.0.1:%d/" % port, timeout=timeout)
    except OSError:
        return None


def status_lines(output):
    """The controller's `-----> ` lines of a push's output (git prefixes them with "remote: ")."""
    return [l for l in output.splitlines() if "----->" in l]


class Repo:
    """A git work tree holding a copy of examples/hello, pushed with stock git."""

    def __init__(self, h, token=None):
        self.h = h
        self.dir = os.path.join(h.tmp, "repo")
        shutil.copytree(EXAMPLE, self.dir,
                        ignore=shutil.ignore_patterns("public", "BUILD_INFO", "__pycache__", "*.pyc"))
        self.env = dict(os.environ, GIT_TERMINAL_PROMPT="0", HOME=h.tmp,
                        GIT_AUTHOR_NAME="Pipeline Test", GIT_AUTHOR_EMAIL="test@example.invalid",
                        GIT_COMMITTER_NAME="Pipeline Test", GIT_COMMITTER_EMAIL="test@example.invalid",
                        GIT_CONFIG_NOSYSTEM="1")
        # Sent on the push if `stele up` wrote a token (a loopback listener may not need it).
        self.extra = ["-c", "http.extraHeader=Authorization: Bearer %s" % token] if token else []
        self.git("init", "-q", "-b", "main")
        self.commit("hello: first version")

    def git(self, *args, timeout=60, check=True):
        argv = ["git"] + self.extra + list(args)
        r = subprocess.run(argv, cwd=self.dir, env=self.env, capture_output=True, text=True,
                           timeout=timeout, stdin=subprocess.DEVNULL)
        with open(os.path.join(self.h.logdir, "git.log"), "a") as f:
            f.write("$ %s\n[exit %d]\n%s%s\n" % (" ".join(args), r.returncode, r.stdout, r.stderr))
        if check and r.returncode != 0:
            raise AssertionError("git %s exited %d:\n%s\n%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
        return r

    def path(self, rel):
        return os.path.join(self.dir, rel)

    def read(self, rel):
        with open(self.path(rel)) as f:
            return f.read()

    def write(self, rel, text):
        with open(self.path(rel), "w") as f:
            f.write(text)

    def edit_json(self, rel, fn):
        doc = json.loads(self.read(rel))
        fn(doc)
        self.write(rel, json.dumps(doc, indent=2) + "\n")

    def commit(self, msg):
        self.git("add", "-A")
        self.git("commit", "-q", "-m", msg)
        return self.head()

    def head(self):
        return self.git("rev-parse", "HEAD").stdout.strip()

    def tree(self, rev="HEAD"):
        return self.git("rev-parse", rev + "^{tree}").stdout.strip()

    def push(self):
        """`git push stele main`: (exit code, stdout + stderr, where git shows the remote's lines)."""
        r = self.git("push", "stele", "main", timeout=PUSH_TIMEOUT, check=False)
        return r.returncode, r.stdout + r.stderr


class PipelineTest(SteleTestCase):

    # -- helpers -------------------------------------------------------------

    def start(self, ports, env=None):
        """`stele up` on `ports` (its environment plus `env`), and the CLI's argv prefix."""
        if env:
            spawn = self.h.spawn

            def spawn_with_env(name, argv, env_=None):
                return spawn(name, argv, env=dict(os.environ, **env))
            self.h.spawn = spawn_with_env
            try:
                self.up = self.h.up(ports)
            finally:
                self.h.spawn = spawn
        else:
            self.up = self.h.up(ports)
        self.api = self.up.api
        self.cli = [STELE, "--api", self.up.url, "--data-dir", self.up.data_dir]
        return self.up

    def stele(self, *args, timeout=120, check=True):
        return self.h.run(self.cli + list(args), timeout=timeout, check=check)

    def token(self):
        try:
            with open(os.path.join(self.up.data_dir, "token")) as f:
                return f.read().strip() or None
        except OSError:
            return None

    def create_and_clone(self):
        """`stele create hello`, a repo of examples/hello with the printed remote added."""
        r = self.stele("create", NAME)
        m = re.search(r"git remote add stele (\S+)", r.stdout)
        self.assertIsNotNone(m, "`stele create` printed no git remote:\n" + r.stdout)
        url = m.group(1)
        self.assertTrue(url.endswith("/git/%s.git" % NAME), url)
        repo = Repo(self.h, self.token())
        repo.git("remote", "add", "stele", url)
        return repo

    def releases(self):
        return {r["number"]: r for r in self.api.get("/api/v1/apps/%s/releases" % NAME)["releases"]}

    def release(self, n):
        doc = self.api.get("/api/v1/apps/%s/releases/%d" % (NAME, n))
        return doc["release"] if isinstance(doc.get("release"), dict) else doc

    def newest(self):
        rs = self.releases()
        self.assertTrue(rs, "no releases")
        return rs[max(rs)]

    def release_log(self, n):
        status, text = http("GET", "%s/api/v1/apps/%s/releases/%d/log" % (self.up.url, NAME, n))
        self.assertEqual(status, 200, text)
        return text if isinstance(text, str) else json.dumps(text)

    def current(self):
        return self.api.app(APP)["release"]

    def wait_serving(self, release, needle, n=2, timeout=60):
        """n healthy instances of `release`, every one serving a page with `needle`; returns them."""
        def check():
            ts = [t for t in healthy_service_tasks(self.api) if t["release"] == release]
            if len(ts) != n or len(service_tasks(self.api)) != n:
                return False
            pages = [page(t) or "" for t in ts]
            return ts if all(needle in p and "release %d" % release in p for p in pages) else False
        return wait_until(check, timeout, "%d instances of release %d serving %r" % (n, release, needle), interval=0.3)

    def push_ok(self, repo, what):
        """A push that must become a ready, deployed release: its output and number."""
        before = set(self.releases())
        rc, out = repo.push()
        self.assertEqual(rc, 0, "git push (%s) failed:\n%s" % (what, out))
        new = sorted(set(self.releases()) - before)
        self.assertEqual(len(new), 1, "push (%s) made releases %s:\n%s" % (what, new, out))
        n = new[0]
        rel = wait_until(lambda: self.release(n) if self.release(n)["status"] in ("ready", "failed") else None,
                         PUSH_TIMEOUT, "release %d to finish" % n)
        self.assertEqual(rel["status"], "ready", "release %d (%s): %s\n%s" % (n, what, rel, out))
        return n, out

    def push_failing(self, repo, what):
        """A push whose release must fail: (number, output, release)."""
        before = set(self.releases())
        _, out = repo.push()  # the refs are accepted before the pipeline runs: git's exit code says nothing
        new = sorted(set(self.releases()) - before)
        self.assertEqual(len(new), 1, "push (%s) made releases %s:\n%s" % (what, new, out))
        n = new[0]
        rel = wait_until(lambda: self.release(n) if self.release(n)["status"] in ("ready", "failed") else None,
                         PUSH_TIMEOUT, "release %d to finish" % n)
        self.assertEqual(rel["status"], "failed", "release %d (%s) should have failed: %s\n%s" % (n, what, rel, out))
        self.assertRegex(out, re.compile(r"\bfailed\b", re.I), "push output does not say the release failed")
        return n, out, rel

    def assert_push_showed_every_step(self, out, n):
        lines = "\n".join(status_lines(out))
        for step in ("build", "test", "smoke", "ready", "deploy"):
            self.assertRegex(lines, re.compile(step, re.I), "no %s status line in the push output:\n%s" % (step, out))
        self.assertRegex(out, re.compile(r"release\s+#?v?%d\b" % n, re.I), "push output does not name release %d" % n)

    def assert_runs_as_task_user(self, tasks):
        uid = task_user_uid()
        for t in tasks:
            self.assertTrue(t.get("pid"), "task %s has no pid" % t["id"])
            app_pid = app_process(t["pid"], "python3")
            self.assertIsNotNone(app_pid, "no python3 under task %s" % t["id"])
            self.assertEqual(proc_uid(app_pid), uid, "task %s runs as uid %d" % (t["id"], proc_uid(app_pid)))

    # -- the tests -----------------------------------------------------------

    def test_push_rollback_reuse_config_and_run(self):
        self.start("32200-32249")
        repo = self.create_and_clone()
        self.assertEqual(self.releases(), {}, "`stele create` made a release")

        # First push: every step shown, the build ran as the task user, the app serves the built page.
        n1, out = self.push_ok(repo, "first version")
        self.assert_push_showed_every_step(out, n1)
        self.assertIn("building as stele-task", out, "the build did not run as the task user:\n" + out)
        tasks = self.wait_serving(n1, "Hello from Stele")
        self.assert_runs_as_task_user(tasks)
        r1 = self.release(n1)
        self.assertEqual(r1["sha"], repo.head())
        self.assertEqual(r1["cause"], "push")
        self.assertTrue(r1["artifact"], r1)
        self.assertIn("building as stele-task", self.release_log(n1))

        # Second push: a rolling upgrade that never drops below minimumHealthCapacity (0.5 of 2).
        tpl = repo.read("templates/index.html.in").replace("Hello from Stele", "Hello again from Stele")
        repo.write("templates/index.html.in", tpl)
        repo.commit("hello: new page")
        seen = {"min_healthy": 2, "max_live": 2}
        stop = threading.Event()

        def watch():
            while not stop.is_set():
                try:
                    seen["min_healthy"] = min(seen["min_healthy"], len(healthy_service_tasks(self.api)))
                    seen["max_live"] = max(seen["max_live"], len(service_tasks(self.api)))
                except Exception:  # noqa: BLE001 - a slow answer is not a capacity drop
                    pass
                time.sleep(0.1)
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            n2, out = self.push_ok(repo, "new page")
            self.wait_serving(n2, "Hello again from Stele")
        finally:
            stop.set()
            watcher.join(5)
        self.assert_push_showed_every_step(out, n2)
        self.assertGreaterEqual(seen["min_healthy"], 1, "healthy instances fell below minimumHealthCapacity")
        self.assertLessEqual(seen["max_live"], 3, "more instances than maximumOverCapacity allows")
        self.assertNotEqual(self.release(n2)["artifact"], r1["artifact"])

        # Rollback: the first page again, from the first slug, with no build.
        head = max([e["id"] for e in self.api.get("/api/v1/events?limit=1")["events"]] or [0])
        self.stele("rollback", NAME, "--wait", timeout=PUSH_TIMEOUT)
        # Release 1 itself is deployed again (design.md: rollback = deploy an earlier ready release).
        rb = self.release(self.current())
        self.assertEqual(rb["number"], n1, rb)
        self.assertEqual(rb["artifact"], r1["artifact"])
        self.assertEqual(max(self.releases()), n2, "a rollback must not make a release")
        self.wait_serving(rb["number"], "Hello from Stele")
        events = self.api.get("/api/v1/events?app=%s&since=%d" % (APP, head))["events"]
        builds = [e.get("task") for e in events if ".build." in (e.get("task") or "")]
        self.assertEqual(builds, [], "a rollback started build tasks")
        listing = self.stele("releases", NAME).stdout
        self.assertRegex(listing, r"(?m)^%d\s+\*\s+ready\s" % rb["number"])

        # A revert to an already-built tree reuses that slug: no build step.
        repo.git("revert", "--no-edit", "HEAD")
        self.assertEqual(repo.tree(), r1["tree"] if r1.get("tree") else repo.tree("HEAD~2"))
        n3, out = self.push_ok(repo, "revert")
        r3 = self.release(n3)
        self.assertIn(r3.get("reusedFrom"), (n1, rb["number"]), r3)
        self.assertEqual(r3["artifact"], r1["artifact"])
        log3 = self.release_log(n3)
        self.assertNotIn("building as", log3, "the reused release was built again")
        self.assertNotIn("rendered public/index.html", out)
        self.wait_serving(n3, "Hello from Stele")

        # Config: a new release of the same slug, deployed; the value is masked unless revealed.
        self.stele("config", "set", NAME, "GREETING=hi", "--wait", timeout=PUSH_TIMEOUT)
        rconf = self.newest()
        self.assertGreater(rconf["number"], n3)
        self.assertEqual(rconf["cause"], "config")
        self.assertEqual(rconf["artifact"], r1["artifact"])
        served = self.wait_serving(rconf["number"], '<p class="greeting">hi</p>')
        self.assert_runs_as_task_user(served)
        shown = self.stele("config", NAME).stdout
        self.assertRegex(shown, r"(?m)^GREETING\s+\S")
        self.assertNotRegex(shown, r"(?m)^GREETING\s+hi\s*$", "config value shown without --reveal")
        revealed = json.loads(self.stele("config", NAME, "--reveal", "--json").stdout)
        if isinstance(revealed.get("config"), dict):
            revealed = revealed["config"]
        self.assertEqual(revealed.get("GREETING"), "hi")

        # A one-off command: its output here, its exit code ours.
        r = self.stele("run", NAME, "--", "sh", "-c", "echo out; id -un; exit 3", check=False, timeout=PUSH_TIMEOUT)
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertEqual(r.stdout.splitlines()[:2], ["out", "stele-task"], r.stdout)

        # The CLI's view of a finished pipeline.
        r = self.stele("pipeline", NAME, "--release", str(n1))
        self.assertIn("building as stele-task", r.stdout)
        r = self.stele("pipeline", NAME, "--release", str(n2), "--follow", timeout=60)
        self.assertEqual(r.returncode, 0)

    def test_failing_test_and_failing_smoke_keep_the_old_release(self):
        self.start("32250-32299")
        repo = self.create_and_clone()
        n1, _ = self.push_ok(repo, "first version")
        self.wait_serving(n1, "Hello from Stele")

        # A failing unit test: its output in the push and the release log, the old release still serves.
        original_tests = repo.read("test_server.py")
        repo.write("test_server.py", original_tests.replace(
            'if __name__ == "__main__":',
            'class Deliberate(unittest.TestCase):\n'
            '    def test_deliberately_failing(self):\n'
            '        self.fail("DELIBERATE-TEST-FAILURE")\n\n\n'
            'if __name__ == "__main__":'))
        repo.commit("a failing test")
        n2, out, rel = self.push_failing(repo, "failing test")
        self.assertIn("DELIBERATE-TEST-FAILURE", out)
        self.assertEqual(rel.get("step"), "test", rel)
        self.assertIn("DELIBERATE-TEST-FAILURE", self.release_log(n2))
        self.assertEqual(self.current(), n1)
        self.wait_serving(n1, "Hello from Stele", timeout=10)
        r = self.stele("pipeline", NAME, "--release", str(n2), "--follow", check=False, timeout=60)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("DELIBERATE-TEST-FAILURE", r.stdout)
        self.assertIn("failed", r.stderr)

        # A failing smoke run (the health check asks a path the app does not serve): same.
        repo.write("test_server.py", original_tests)
        repo.edit_json("stele.json", lambda d: d["healthChecks"][0].update(path="/missing-health"))
        repo.commit("health check on a missing path")
        n3, out, rel = self.push_failing(repo, "failing smoke")
        self.assertEqual(rel.get("step"), "smoke", rel)
        self.assertRegex("\n".join(status_lines(out)), re.compile("smoke", re.I))
        self.assertIn("smoke", self.release_log(n3).lower())
        self.assertEqual(self.current(), n1)
        self.wait_serving(n1, "Hello from Stele", timeout=10)
        listing = self.stele("releases", NAME).stdout
        self.assertRegex(listing, r"(?m)^%d\s+failed\s+push.*smoke" % n3)
        self.assertRegex(listing, r"(?m)^%d\s+\*\s+ready" % n1)

        # A pushed release that becomes ready while a deployment runs supersedes it, and both
        # pushes say so: a slow-starting release (6 s before it answers) is being deployed
        # when a fast one is pushed.
        repo.edit_json("stele.json", lambda d: (d["healthChecks"][0].update(path="/health"),
                                                d.update(cmd="sleep 6; exec python3 server.py")))
        repo.commit("slow start")
        slow = {}
        pusher = threading.Thread(target=lambda: slow.update(out=repo.push()[1]), daemon=True)
        pusher.start()

        def slow_deploying():
            deps = self.api.get("/api/v1/deployments")["deployments"]
            return [d for d in deps if d["appId"] == APP and d["toRelease"] > n3] or None
        dep = wait_until(slow_deploying, PUSH_TIMEOUT, "the slow release's deployment")[0]
        repo.edit_json("stele.json", lambda d: d.update(cmd="python3 server.py"))
        repo.commit("fast start again")
        n5, out = self.push_ok(repo, "superseding push")
        pusher.join(PUSH_TIMEOUT)
        self.assertRegex(out, re.compile(r"Superseding the running deployment", re.I), out)
        self.assertRegex(slow.get("out", ""), re.compile(r"superseded", re.I), slow.get("out"))
        self.assertEqual(self.current(), n5)
        self.wait_serving(n5, "Hello from Stele")
        finished = [d for d in self.api.get("/api/v1/deployments?all=1")["deployments"] if d["id"] == dep["id"]]
        self.assertEqual(finished[0]["status"], "canceled", finished)

    def test_webhook_signature_then_a_signed_push_and_retention(self):
        self.start("32300-32349", env={"STELE_WEBHOOK_SECRET": WEBHOOK_SECRET, "STELE_RETAIN_RELEASES": "1"})
        repo = self.create_and_clone()
        payload = json.dumps({"ref": "refs/heads/main", "after": repo.head(), "before": "0" * 40,
                              "repository": {"name": NAME, "full_name": "example/" + NAME,
                                             "clone_url": "file://" + repo.dir}}).encode()
        hook = self.up.url + "/api/v1/hooks/git"
        base_headers = {"Content-Type": "application/json", "X-GitHub-Event": "push"}
        wrong = "sha256=" + hmac.new(b"not-the-secret", payload, hashlib.sha256).hexdigest()
        for headers in ({"X-Hub-Signature-256": wrong}, {}):
            status, doc = http("POST", hook, payload, headers=dict(base_headers, **headers))
            self.assertEqual(status, 401, "webhook with signature headers %s answered %s: %s" % (headers, status, doc))
        time.sleep(1)
        self.assertEqual(self.releases(), {}, "a refused webhook made a release")

        # Signed: the server fetches the commit and runs the same pipeline.
        good = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), payload, hashlib.sha256).hexdigest()
        status, doc = http("POST", hook, payload, headers=dict(base_headers, **{"X-Hub-Signature-256": good}))
        self.assertEqual(status, 202, doc)
        n1 = doc["release"]
        rel = wait_until(lambda: self.release(n1) if self.release(n1)["status"] in ("ready", "failed") else None,
                         PUSH_TIMEOUT, "webhook release to finish")
        self.assertEqual(rel["status"], "ready", rel)
        self.assertEqual(rel["cause"], "webhook")
        self.assertEqual(rel["sha"], repo.head())
        self.wait_serving(n1, "Hello from Stele")

        # Retention 1: after two more pushes, release 1 is neither current, previous nor among
        # the newest ready one, so its slug goes and it can no longer be deployed.
        for i in (2, 3):
            repo.write("templates/index.html.in", repo.read("templates/index.html.in").replace(
                "Hello from Stele", "Hello %d from Stele" % i).replace("Hello %d from Stele" % (i - 1), "Hello %d from Stele" % i))
            repo.commit("page %d" % i)
            n, _ = self.push_ok(repo, "page %d" % i)
        r1 = self.release(n1)
        self.assertTrue(r1["artifactCollected"], r1)
        slug = os.path.join(self.up.data_dir, "server", "artifacts", "sha256", r1["artifact"])
        self.assertFalse(os.path.exists(slug), "retention left the slug of release %d" % n1)
        self.assertTrue(os.path.exists(os.path.join(self.up.data_dir, "server", "artifacts", "sha256",
                                                    self.release(n - 1)["artifact"])), "the rollback target's slug went")
        r = self.stele("deploy", NAME, "--release", str(n1), check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("retention", r.stdout + r.stderr)

    def test_build_over_its_memory_limit_fails_and_steps_run_as_the_task_user(self):
        self.start("32350-32399")
        repo = self.create_and_clone()
        repo.edit_json("stele.json", lambda d: d.update(build={
            "cmd": "id -un; python3 -c 'x = bytearray(400 * 1024 * 1024); print(len(x))'", "mem": 128}))
        repo.commit("a build that needs 400 MB")
        n, out, rel = self.push_failing(repo, "build over its memory limit")
        self.assertEqual(rel.get("step"), "build", rel)
        self.assertRegex(rel.get("reason") or "", re.compile("memory", re.I), rel)
        self.assertRegex(out, re.compile("memory", re.I), "push output does not say why the build failed")
        log = self.release_log(n)
        self.assertIn("stele-task", log, "the build's `id -un` is not the task user")
        self.assertNotIn(str(400 * 1024 * 1024), log, "the build got its 400 MB")
        self.assertFalse(self.current(), "a failed first release was deployed")


if __name__ == "__main__":
    stelelib.main()
