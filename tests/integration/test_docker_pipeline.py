"""Dockerfile apps through the git pipeline (issue 6, points 3 and 6): a
stock `git push` of a repository with a Dockerfile builds the image through
the Engine API's /build (progress on the push terminal), the test step and
`stele run` execute inside that image, the release deploys as containers on
the host network, a rolling upgrade replaces them; the saved image lives in
the artifact store, so an engine that lost it loads it again by digest; the
images of releases collected by retention leave the engine.

Needs a Docker engine and stele/busybox:latest (see test_docker.py); skipped,
saying so, without them. Only 127.0.0.1 is contacted.

Run: STELE_BIN=build/stele python3 tests/integration/test_docker_pipeline.py -v
Task ports: 32540-32579.
"""

import json
import os
import re
import subprocess
import sys
import unittest
import urllib.parse

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import stelelib  # noqa: E402
import test_docker as dk  # noqa: E402  (engine helpers; its TestCase is not collected from here)
from stelelib import STELE, SteleTestCase, wait_until  # noqa: E402

PORTS = "32540-32579"
NAME = "dweb"
APP = "/" + NAME
PUSH_TIMEOUT = 240

DOCKERFILE = """FROM stele/busybox:latest
COPY www /www
RUN echo "built-$(cat /www/version)" > /www/build.txt
"""

STELE_JSON = """{
  "cmd": "exec httpd -f -p 127.0.0.1:$PORT0 -h /www",
  "cpus": 0.1, "mem": 32, "instances": 2,
  "portDefinitions": [{"port": 0, "name": "http"}],
  "healthChecks": [{"protocol": "HTTP", "path": "/version", "portIndex": 0, "gracePeriodSeconds": 5,
                    "intervalSeconds": 1, "timeoutSeconds": 1, "maxConsecutiveFailures": 3}],
  "upgradeStrategy": {"minimumHealthCapacity": 1, "maximumOverCapacity": 1},
  "test": {"cmd": "grep -q '^built-' /www/build.txt && echo image-test-ok"}
}
"""


def image_id(ref):
    status, doc = dk.engine("GET", "/images/%s/json" % ref)
    return doc["Id"] if status == 200 else None


def app_containers(running=True):
    q = "/containers/json?all=1&filters=" + urllib.parse.quote(json.dumps({"label": ["stele.app=" + APP]}))
    status, doc = dk.engine("GET", q)
    assert status == 200, doc
    return [c for c in doc if c["State"] == "running" or not running]


def version_of(task):
    try:
        return stelelib.get_text("http://127.0.0.1:%d/version" % task["ports"][0], timeout=2).strip()
    except OSError:
        return None


@unittest.skipIf(dk.PROBLEM, dk.PROBLEM or "")
class DockerPipelineTest(SteleTestCase):

    def run(self, result=None):
        try:
            return super().run(result)
        finally:  # containers and images this test made, by its labels and tags only
            for c in app_containers(running=False):
                dk.engine("DELETE", "/containers/%s?force=1" % c["Id"])
            for n in range(1, 6):
                dk.engine("DELETE", "/images/stele/%s:r%d?force=1" % (NAME, n))

    def stele(self, *args, timeout=120, check=True):
        return self.h.run([STELE, "--api", self.up.url, "--data-dir", self.up.data_dir] + list(args),
                          timeout=timeout, check=check)

    def git(self, *args, timeout=60):
        env = dict(os.environ, GIT_TERMINAL_PROMPT="0", HOME=self.h.tmp, GIT_CONFIG_NOSYSTEM="1",
                   GIT_AUTHOR_NAME="Docker Test", GIT_AUTHOR_EMAIL="test@example.invalid",
                   GIT_COMMITTER_NAME="Docker Test", GIT_COMMITTER_EMAIL="test@example.invalid")
        r = subprocess.run(["git"] + self.git_extra + list(args), cwd=self.repo, env=env, capture_output=True,
                           text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        with open(os.path.join(self.h.logdir, "git.log"), "a") as f:
            f.write("$ git %s\n[exit %d]\n%s%s\n" % (" ".join(args), r.returncode, r.stdout, r.stderr))
        return r

    def write(self, rel, text):
        path = os.path.join(self.repo, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)

    def release(self, n):
        doc = self.up.api.get("/api/v1/apps/%s/releases/%d" % (NAME, n))
        return doc["release"] if isinstance(doc.get("release"), dict) else doc

    def push_version(self, version):
        """Commits www/version = `version`, pushes; the ready release and the push's output."""
        self.write("www/version", version + "\n")
        self.assertEqual(self.git("add", "-A").returncode, 0)
        self.assertEqual(self.git("commit", "-q", "-m", version).returncode, 0)
        r = self.git("push", "stele", "main", timeout=PUSH_TIMEOUT)
        out = r.stdout + r.stderr
        self.assertEqual(r.returncode, 0, out)
        m = re.findall(r"release (\d+)", out)
        self.assertTrue(m, "the push names no release:\n" + out)
        n = int(m[0])
        rel = wait_until(lambda: self.release(n) if self.release(n)["status"] in ("ready", "failed") else None,
                         PUSH_TIMEOUT, "release %d to finish" % n)
        self.assertEqual(rel["status"], "ready", "%s\n%s" % (rel, out))
        return rel, out

    def serving(self, version, n=2, timeout=90):
        """n healthy instances, all containers, every one answering `version`."""
        def check():
            ts = [t for t in self.up.api.tasks(APP) if t["state"] == "running" and t.get("healthy")
                  and not re.search(r"\.(build|test|smoke|release|run)\.", t["id"])]
            if len(ts) != n or len(app_containers()) != n:
                return None
            pages = [version_of(t) for t in ts]
            return ts if all(p == version for p in pages) else None
        return wait_until(check, timeout, "%d containers serving %s" % (n, version), interval=0.5)

    def test_dockerfile_app_built_tested_deployed_upgraded_reloaded_and_collected(self):
        self.up = self.h.up(PORTS, args=["--retain-releases", "1"])
        r = self.stele("create", NAME)
        remote = re.search(r"git remote add stele (\S+)", r.stdout).group(1)
        self.repo = os.path.join(self.h.tmp, "repo")
        os.makedirs(self.repo)
        token = None
        try:
            with open(os.path.join(self.up.data_dir, "token")) as f:
                token = f.read().strip() or None
        except OSError:
            pass
        self.git_extra = ["-c", "http.extraHeader=Authorization: Bearer %s" % token] if token else []
        self.git("init", "-q", "-b", "main")
        self.git("remote", "add", "stele", remote)
        self.write("Dockerfile", DOCKERFILE)
        self.write("stele.json", STELE_JSON)

        # 1. Built through /build with its progress on the push terminal,
        # tagged stele/<app>:r<n>; the test step ran inside the image.
        rel1, out = self.push_version("v1")
        self.assertRegex(out, r"Step 1/\d+ : FROM stele/busybox:latest")
        self.assertIn("Built image stele/%s:r%d" % (NAME, rel1["number"]), out)
        self.assertIn("image-test-ok", out)  # grep of a file only the image has
        self.assertTrue(rel1["image"].startswith("sha256:"), rel1)
        self.assertEqual(image_id("stele/%s:r%d" % (NAME, rel1["number"])), rel1["image"])
        self.assertEqual(rel1["spec"]["container"]["docker"]["image"], "stele/%s:r%d" % (NAME, rel1["number"]))
        tasks = self.serving("v1")
        ids = sorted(c["Labels"]["stele.task"] for c in app_containers())
        self.assertEqual(ids, sorted(t["id"] for t in tasks))
        for c in app_containers():
            self.assertEqual(c["ImageID"], rel1["image"])

        # `stele run` executes in the release's image too.
        r = self.stele("run", NAME, "--", "cat /www/build.txt", timeout=120)
        self.assertIn("built-v1", r.stdout)

        # 2. A second push: a rolling upgrade to new containers of the new image.
        rel2, _ = self.push_version("v2")
        self.assertNotEqual(rel2["image"], rel1["image"])
        self.serving("v2")

        # 3. Retention (1 ready release beyond the current and previous ones):
        # the third push collects release 1, and its image leaves the engine.
        rel3, _ = self.push_version("v3")
        self.serving("v3")
        wait_until(lambda: image_id(rel1["image"]) is None or None, 60, "release 1's image removed from the engine")
        self.assertEqual(image_id(rel3["image"]), rel3["image"])

        # 4. The engine loses the current image: the next instance loads it
        # from the artifact store by digest and checks its id.
        self.stele("scale", APP, "0")
        wait_until(lambda: not app_containers() or None, 60, "no containers left")
        status, doc = dk.engine("DELETE", "/images/%s?force=1" % rel3["image"])
        self.assertEqual(status, 200, doc)
        self.assertIsNone(image_id(rel3["image"]))
        self.stele("scale", APP, "1")
        self.serving("v3", n=1)
        self.assertEqual(image_id(rel3["image"]), rel3["image"])
        self.assertEqual(image_id("stele/%s:r%d" % (NAME, rel3["number"])), rel3["image"])


if __name__ == "__main__":
    unittest.main()
