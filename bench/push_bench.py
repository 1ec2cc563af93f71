#!/usr/bin/env python3
"""Push-to-serving latency of the sample app (design.md's pipeline target).

Starts `stele up` in a scratch dir, creates the app, and for each round commits
a page change to a copy of examples/hello and runs stock `git push`. Measures,
per round:
  push -> first response   `git push` started until a task of the new release
                           answers on its own port with the new release's page
  push -> old retired      ... until no instance of an older release is alive
  receive/build/test/smoke the pipeline's own step durations (release record)
  deploy                   the rest of push -> first response (git transfer, hook,
                           placement, the new instance starting and answering)
  own cmd time             how long the build and test commands themselves ran
                           (their tasks' running -> finished events)
  minus own                push -> first response minus that (target <= 3 s)
and prints the median of each over the rounds, plus the slug size.

Usage: STELE_BIN=build/stele python3 bench/push_bench.py [--rounds N]
Traffic stays on 127.0.0.1 (API on a free port, task ports 32600-32699).
"""

import argparse
import datetime
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.normpath(os.path.join(HERE, "..", "examples", "hello"))
STELE = os.environ.get("STELE_BIN", os.path.join(HERE, "..", "build", "stele"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=2.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode("utf-8", "replace")


def api(base, path):
    return json.loads(get(base + path, timeout=10))


def iso_ms(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() * 1000


def service_tasks(base):
    return [t for t in api(base, "/api/v1/apps/hello/tasks")["tasks"]
            if not any("." + k + "." in t["id"] for k in ("build", "test", "smoke", "release", "run"))]


def own_command_ms(base, release):
    """Run time of the release's build and test commands: running -> finished per task."""
    events = api(base, "/api/v1/events?app=/hello&type=task_status&limit=5000")["events"]
    started, ended = {}, {}
    for e in events:
        t = e.get("task", "")
        if not (t.startswith("hello-r%d.build." % release) or t.startswith("hello-r%d.test." % release)):
            continue
        if e.get("state") == "running":
            started[t] = iso_ms(e["time"])
        elif e.get("state") in ("finished", "failed"):
            ended[t] = iso_ms(e["time"])
    return sum(ended[t] - started[t] for t in ended if t in started)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="stele-push-bench-")
    os.chmod(tmp, 0o755)  # the task user must reach the agent's sandboxes below it
    port = free_port()
    base = "http://127.0.0.1:%d" % port
    log = open(os.path.join(tmp, "up.log"), "w")
    up = subprocess.Popen([STELE, "up", "--router-listen", "off", "--data-dir", os.path.join(tmp, "data"), "--listen", "127.0.0.1:%d" % port,
                           "--ports", "32600-32699"], stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            try:
                get(base + "/ping")
                break
            except OSError:
                time.sleep(0.1)
        subprocess.run([STELE, "--api", base, "--data-dir", os.path.join(tmp, "data"), "create", "hello"],
                       check=True, capture_output=True)
        repo = os.path.join(tmp, "repo")
        shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns("public", "BUILD_INFO", "__pycache__"))
        env = dict(os.environ, HOME=tmp, GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="b@localhost",
                   GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="b@localhost", GIT_CONFIG_NOSYSTEM="1")

        def git(*a):
            return subprocess.run(["git"] + list(a), cwd=repo, env=env, check=True, capture_output=True, text=True)
        git("init", "-q", "-b", "main")
        git("remote", "add", "stele", base + "/git/hello.git")
        rows = []
        for rnd in range(args.rounds + 1):  # round 0 is the first deploy (nothing to retire); not counted
            tpl = os.path.join(repo, "templates", "index.html.in")
            with open(tpl) as f:
                text = f.read()
            with open(tpl, "w") as f:
                f.write(text.replace("</body>", "<!-- round %d -->\n</body>" % rnd, 1))
            git("add", "-A")
            git("commit", "-q", "-m", "round %d" % rnd)
            before = {r["number"] for r in api(base, "/api/v1/apps/hello/releases")["releases"]}
            t0 = time.time() * 1000
            result = {}
            pusher = threading.Thread(target=lambda: result.update(p=git("push", "-q", "stele", "main")))
            pusher.start()
            first = retired = None
            n = None
            deadline = time.time() + 120
            while time.time() < deadline and (first is None or retired is None):
                if n is None:
                    new = {r["number"] for r in api(base, "/api/v1/apps/hello/releases")["releases"]} - before
                    n = min(new) if new else None
                if n is not None:
                    tasks = service_tasks(base)
                    if first is None:
                        for t in tasks:
                            if t["release"] == n and t.get("ports") and t["state"] == "running":
                                try:
                                    if "release %d" % n in get("http://127.0.0.1:%d/" % t["ports"][0], 0.5):
                                        first = time.time() * 1000 - t0
                                        break
                                except OSError:
                                    pass
                    if first is not None and retired is None and tasks and all(t["release"] == n for t in tasks):
                        retired = time.time() * 1000 - t0
                time.sleep(0.01)
            pusher.join(60)
            if first is None:
                sys.exit("round %d: release %s never answered; push: %s; up.log:\n%s" % (rnd, n, result, open(os.path.join(tmp, "up.log")).read()[-3000:]))
            rel = api(base, "/api/v1/apps/hello/releases/%d" % n)["release"]
            d = rel.get("durations", {})
            own = own_command_ms(base, n)
            rows.append({"round": rnd, "first": first, "retired": retired or float("nan"), "receive": d.get("receive", 0),
                         "build": d.get("build", 0), "test": d.get("test", 0), "smoke": d.get("smoke", 0),
                         "own": own, "minus_own": first - own, "slug": rel.get("artifactSize", 0)})
            # The rest: git's transfer and hook start-up, step placement, and the rolling deploy
            # up to the first answer of a new instance.
            rows[-1]["deploy"] = first - sum(rows[-1][k] for k in ("receive", "build", "test", "smoke"))
        cols = ["first", "retired", "receive", "build", "test", "smoke", "deploy", "own", "minus_own"]
        print("push_bench: examples/hello, %d rounds after the first deploy (ms)" % args.rounds)
        print("%-6s %s %10s" % ("round", " ".join("%10s" % c for c in cols), "slug B"))
        for r in rows:
            print("%-6s %s %10d" % (r["round"] if r["round"] else "0*", " ".join("%10.0f" % r[c] for c in cols), r["slug"]))
        counted = rows[1:]
        med = {c: statistics.median(r[c] for r in counted) for c in cols}
        print("%-6s %s" % ("median", " ".join("%10.0f" % med[c] for c in cols)))
        print("push -> first response of the new release: %.2f s; minus the build and test commands' own %.2f s: "
              "%.2f s (target <= 3 s); -> last old instance retired: %.2f s; slug %d bytes"
              % (med["first"] / 1000, med["own"] / 1000, med["minus_own"] / 1000, med["retired"] / 1000, rows[-1]["slug"]))
        print("(0* = the first deploy, with nothing to retire; not in the median)")
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(30)
        subprocess.run([STELE, "down", "--data-dir", os.path.join(tmp, "data")], capture_output=True)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
