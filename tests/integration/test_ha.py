"""Cluster and HA: three servers sharing one etcd (Debian's etcd-server,
started here) elect a leader through an etcd lease; followers redirect to it;
agents given every server follow whoever leads; killing the leader in the
middle of a rolling upgrade hands the deployment to a new leader, which
finishes it with no instance lost or duplicated.

Run: STELE_BIN=build/stele python3 tests/integration/test_ha.py -v
Task ports: 32640-32679.
"""

import http.client as httpclient
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import stelelib  # noqa: E402
from stelelib import STELE, SteleTestCase, http, log, sample_app, task_answers, wait_until  # noqa: E402

APP = "/web"
LEADER_TTL = 3
TOKEN = "stl_ha_test_admin_token_000000000001"
JOIN = "stl_ha_test_join_token_0000000000001"


def raw_request(url, method="GET", body=None):
    """One request without following redirects: (status, headers, body)."""
    u = urllib.parse.urlsplit(url)
    c = httpclient.HTTPConnection(u.hostname, u.port, timeout=5)
    try:
        data = json.dumps(body).encode() if body is not None else None
        c.request(method, u.path + ("?" + u.query if u.query else ""), body=data,
                  headers={"Content-Type": "application/json"} if data else {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode(errors="replace")
    finally:
        c.close()


class HaTest(SteleTestCase):

    def start_servers(self, etcd_url, n=3):
        servers = []
        for i in range(1, n + 1):
            name = "srv%d" % i
            servers.append(self.h.server(name, agent_timeout=10, args=[
                "--store", etcd_url, "--hostname", name, "--leader-ttl", str(LEADER_TTL),
                "--token", TOKEN, "--join-token", JOIN]))  # the same on every server
        return servers

    @staticmethod
    def leadership(server):
        try:
            status, doc = http("GET", server.url + "/api/v1/leader", timeout=2)
        except OSError:
            return None
        return doc if status == 200 else None

    def wait_leader(self, servers, timeout, exclude=()):
        """The one server all live ones agree leads (and that says so itself)."""
        def agreed():
            views = {s.name: self.leadership(s) for s in servers if s.name not in exclude}
            if any(v is None or not v.get("leader") for v in views.values()):
                return None
            ids = {v["leader"]["id"] for v in views.values()}
            selves = [name for name, v in views.items() if v["self"]]
            if len(ids) == 1 and selves == list(ids):
                return next(s for s in servers if s.name == selves[0])
            return None
        return wait_until(agreed, timeout, "the servers to agree on one leader")

    def stable_tasks(self, api, want, tag, seconds=3):
        """`want` live tasks, all healthy and answering `tag`, for `seconds` in a row."""
        end = time.time() + seconds
        while time.time() < end:
            live = api.live_tasks(APP)
            self.assertEqual(len(live), want, "live tasks: %s" % [(t["id"], t["state"]) for t in live])
            for t in live:
                self.assertTrue(t["healthy"], t)
                self.assertIn(tag, task_answers(t) or "", t)
            time.sleep(0.5)

    def test_01_leader_election_redirects_and_failover_mid_deploy(self):
        etcd_url = self.start_etcd()
        servers = self.start_servers(etcd_url)
        t0 = time.time()
        leader = self.wait_leader(servers, 15)
        log("leader %s elected in %.1f s" % (leader.name, time.time() - t0))
        followers = [s for s in servers if s is not leader]

        # Followers answer who leads and send everything else to the leader.
        status, doc = http("GET", followers[0].url + "/v2/leader")
        self.assertEqual((status, doc["leader"]), (200, "127.0.0.1:%d" % leader.port))
        status, headers, body = raw_request(followers[1].url + "/v2/apps", "POST", sample_app(APP, instances=2))
        self.assertEqual(status, 307, body)
        self.assertEqual(headers.get("location"), leader.url + "/v2/apps")
        self.assertEqual(headers.get("x-stele-leader"), leader.url)
        self.assertIsNone(leader.api.call("GET", "/v2/apps/web", expect=(200, 404)) and None)

        # Agents know every server; they register with the leader.
        urls = ",".join(s.url for s in servers)
        self.h.agent(leader, "agentA", "hostA", "32640-32659", server_url=urls, agent_timeout=10)
        self.h.agent(leader, "agentB", "hostB", "32660-32679", server_url=urls, agent_timeout=10)
        wait_until(lambda: len([n for n in leader.api.get("/api/v1/nodes")["nodes"] if n["state"] == "active"]) == 2,
                   20, "both agents registered with the leader")

        # A GET sent to a follower is answered by the leader (307 followed).
        leader.api.post("/v2/apps", sample_app(APP, instances=2, release_tag="v1"))
        wait_until(lambda: len(followers[0].api.healthy_tasks(APP)) == 2, 40, "2 healthy v1 instances (read via a follower)")
        self.stable_tasks(leader.api, 2, "v1", seconds=1)
        last_event = max(e["id"] for e in leader.api.get("/api/v1/events")["events"])

        # A rolling upgrade; the leader dies once it has started a new instance.
        spec = sample_app(APP, instances=2, release_tag="v2")
        leader.api.put("/v2/apps/web", spec)
        wait_until(lambda: any(t["release"] == 2 for t in leader.api.live_tasks(APP)), 20,
                   "the upgrade to start a release-2 instance")
        self.assertIsNotNone(leader.api.app(APP)["deployment"], "the deployment is still running when its leader dies")
        leader.proc.kill9()
        killed_at = time.time()
        new_leader = self.wait_leader(servers, 15, exclude=(leader.name,))
        took = time.time() - killed_at
        log("leader %s killed; %s leads after %.1f s" % (leader.name, new_leader.name, took))
        self.assertLess(took, 10, "a new leader within 10 s")

        # The new leader finishes the deployment: 2 instances of release 2.
        api = new_leader.api

        def done():
            app = api.app(APP)
            live = api.live_tasks(APP)
            return app["deployment"] is None and len(live) == 2 and all(
                t["release"] == 2 and t["healthy"] for t in live)
        wait_until(done, 60, "the deployment to finish under the new leader")
        self.stable_tasks(api, 2, "v2", seconds=3)
        events = api.get("/api/v1/events?since=%d" % last_event)["events"]
        types = [e["type"] for e in events]
        self.assertIn("deployment_succeeded", types, "the event history continues under the new leader")
        ids = [e["id"] for e in events]
        self.assertEqual(ids, sorted(set(ids)), "event ids stay unique and increasing across leaders")

        # The killed server comes back as a follower.
        leader.start()
        wait_until(lambda: (self.leadership(leader) or {}).get("leader", {}) and
                   self.leadership(leader)["leader"]["id"] == new_leader.name, 15, "the restarted server to follow")
        self.assertFalse(self.leadership(leader)["self"])

        # A leader stopped cleanly hands over at once (its lease is revoked).
        new_leader.proc.signal(signal.SIGTERM)
        stopped_at = time.time()
        third = self.wait_leader(servers, 10, exclude=(new_leader.name,))
        log("%s stopped; %s leads after %.1f s" % (new_leader.name, third.name, time.time() - stopped_at))
        self.assertLess(time.time() - stopped_at, LEADER_TTL + 2)
        wait_until(lambda: len(third.api.healthy_tasks(APP)) == 2, 30, "agents back with the third leader")
        self.stable_tasks(third.api, 2, "v2", seconds=2)

    def test_02_artifacts_and_repos_survive_losing_the_leader(self):
        """Followers copy each release's artifact (a release is ready only
        once they hold it) and each pushed repository; after the leader is
        killed, the new one rolls back and takes the next push."""
        from test_pipeline import Repo  # examples/hello in a git work tree
        etcd_url = self.start_etcd()
        servers = self.start_servers(etcd_url)
        leader = self.wait_leader(servers, 15)
        urls = ",".join(s.url for s in servers)
        self.h.agent(leader, "agentA", "hostA", "32640-32659", server_url=urls, agent_timeout=10)
        cli = [STELE, "--api", urls]
        created = self.h.run(cli + ["create", "hello"])
        remote = re.search(r"git remote add stele (\S+)", created.stdout).group(1)
        self.assertEqual(remote, leader.url + "/git/hello.git", "the CLI found the leader among the servers")
        repo = Repo(self.h)
        repo.git("remote", "add", "stele", remote)

        def pushed(n, server=leader):
            rc, out = repo.push()
            self.assertEqual(rc, 0, "git push:\n" + out)
            rel = wait_until(lambda: (lambda r: r if r.get("status") in ("ready", "failed") else None)(
                self.release_doc(server, n)), 180, "release %d to finish" % n)
            self.assertEqual(rel["status"], "ready", out)
            return rel, out

        rel1, out = pushed(1)
        status, rep = http("GET", leader.url + "/api/v1/replication")
        self.assertEqual(sorted(r["server"] for r in rep["servers"] if r["live"]),
                         sorted(f.name for f in servers if f is not leader), "both followers report to the leader")
        table = self.h.run(cli + ["servers"]).stdout
        log("stele servers:\n" + table)
        rows = {line.split()[0]: line for line in table.splitlines()[1:]}
        self.assertIn("leader", rows[leader.name])
        for f in servers:
            if f is not leader:
                self.assertIn("follower", rows[f.name])
                self.assertIn(f.url, rows[f.name])
        for f in servers:
            if f is leader:
                continue
            path = os.path.join(f.data_dir, "artifacts", "sha256", rel1["artifact"])
            self.assertTrue(os.path.exists(path), "%s holds release 1's artifact" % f.name)
        repo.write("templates/index.html.in", repo.read("templates/index.html.in").replace("Hello", "Hello again"))
        head2 = repo.commit("second version")
        rel2, _ = pushed(2)

        def mirrored():
            for f in servers:
                if f is leader:
                    continue
                r = subprocess.run(["git", "--git-dir", os.path.join(f.data_dir, "git", "hello.git"),
                                    "rev-parse", "refs/heads/main"], capture_output=True, text=True)
                if r.stdout.strip() != head2:
                    return False
            return True
        wait_until(mirrored, 20, "the followers' repositories to hold the second push")

        leader.proc.kill9()
        new = self.wait_leader(servers, 15, exclude=(leader.name,))
        status, _ = http("GET", new.url + "/api/v1/artifacts/" + rel1["artifact"])
        self.assertEqual(status, 200, "the new leader serves release 1's artifact")
        new.api.post("/api/v1/apps/hello/rollback", {"release": 1})
        wait_until(lambda: new.api.app("/hello")["release"] == 1 and new.api.app("/hello")["deployment"] is None,
                   60, "the rollback to release 1 under the new leader")
        repo.git("remote", "set-url", "stele", new.url + "/git/hello.git")
        repo.write("templates/index.html.in", repo.read("templates/index.html.in").replace("again", "a third time"))
        repo.commit("third version")
        pushed(3, new)  # a fast-forward of the repository the new leader copied

    @staticmethod
    def release_doc(server, n):
        status, doc = http("GET", server.url + "/api/v1/apps/hello/releases/%d" % n)
        if status != 200:
            return {}
        return doc["release"] if isinstance(doc.get("release"), dict) else doc

    @staticmethod
    def release_text(server, n):
        status, text = http("GET", server.url + "/api/v1/apps/hello/releases/%d/log" % n)
        return text if isinstance(text, str) else json.dumps(text)


if __name__ == "__main__":
    stelelib.main()
