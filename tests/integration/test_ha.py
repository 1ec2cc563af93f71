"""Cluster and HA: three servers sharing one etcd (Debian's etcd-server,
started here) elect a leader through an etcd lease; followers redirect to it;
followers proxy what they do not answer themselves to it; agents given every
server follow whoever leads; killing the leader in the
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
import socket
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

    def start_servers(self, etcd_url, n=3, args=()):
        servers = []
        for i in range(1, n + 1):
            name = "srv%d" % i
            servers.append(self.h.server(name, agent_timeout=10, args=[
                "--store", etcd_url, "--hostname", name, "--leader-ttl", str(LEADER_TTL),
                "--token", TOKEN, "--join-token", JOIN] + list(args)))  # the same on every server
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

        # Followers answer who leads; they proxy requests to the leader
        # (streams included) and redirect the agent protocol to it.
        status, doc = http("GET", followers[0].url + "/v2/leader")
        self.assertEqual((status, doc["leader"]), (200, "127.0.0.1:%d" % leader.port))
        events = stelelib.SSE(followers[0].url, "/api/v1/events/stream")
        status, headers, body = raw_request(followers[1].url + "/v2/apps", "POST",
                                            sample_app(APP, instances=2, release_tag="v1"))
        self.assertEqual(status, 201, body)
        self.assertEqual(headers.get("x-stele-leader"), leader.url, "the answer says who answered")
        self.assertEqual(leader.api.app(APP)["instances"], 2, "the follower's write reached the leader")
        created = events.next(10)
        self.assertIsNotNone(created, "the leader's event stream, relayed by a follower")
        self.assertIn("web", json.dumps(created))
        events.close()
        status, headers, body = raw_request(followers[1].url + "/api/v1/agent/heartbeat", "POST", {"id": "nobody"})
        self.assertEqual(status, 307, body)
        self.assertEqual(headers.get("location"), leader.url + "/api/v1/agent/heartbeat")
        self.assertEqual(headers.get("x-stele-leader"), leader.url)

        # Agents know every server; they register with the leader.
        urls = ",".join(s.url for s in servers)
        self.h.agent(leader, "agentA", "hostA", "32640-32659", server_url=urls, agent_timeout=10)
        self.h.agent(leader, "agentB", "hostB", "32660-32679", server_url=urls, agent_timeout=10)
        wait_until(lambda: len([n for n in leader.api.get("/api/v1/nodes")["nodes"] if n["state"] == "active"]) == 2,
                   20, "both agents registered with the leader")

        # A GET sent to a follower is answered by the leader.
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

    def test_03_logs_and_metrics_reach_every_server(self):
        """Agents ship their tasks' output and their metric points to every
        server; a server relays what external senders give it (forward
        records, Graphite points) to the others. So after the leader is
        killed, the new one holds the whole history, and what it receives
        next still reaches the surviving follower."""
        from test_forward import FLUENT_LOGGER_JS, NODE_MODULES, have_node_clients
        if not have_node_clients():
            self.fail("node or the npm clients are missing: run scripts/bootstrap (cd tests/integration && npm ci)")
        etcd_url = self.start_etcd()
        # Every server relays its log store upstream (--forward-to): a
        # leader-only duty, so the upstream gets each record once, not thrice.
        upstream = self.h.server("upstream")
        servers = self.start_servers(etcd_url, args=["--forward-to", "127.0.0.1:%d" % upstream.forward_port])
        leader = self.wait_leader(servers, 15)
        followers = [s for s in servers if s is not leader]
        urls = ",".join(s.url for s in servers)
        self.h.agent(leader, "agentA", "hostA", "32640-32659", server_url=urls, agent_timeout=10, metrics_interval=1)
        leader.api.post("/v2/apps", sample_app(APP, instances=1, release_tag="v1"))
        wait_until(lambda: len(leader.api.healthy_tasks(APP)) == 1, 40, "1 healthy instance")
        wait_until(lambda: all(len(self.app_lines(s)) >= 3 for s in servers), 30,
                   "the instance's output on every server (not only the leader)")

        def forward(server, label, n):
            path = self.h.path("clients", "fluent-logger.js")
            with open(path, "w") as f:
                f.write(FLUENT_LOGGER_JS)
            env = dict(os.environ, NODE_PATH=NODE_MODULES, FLUENT_HOST="127.0.0.1")
            r = subprocess.run(["node", path, str(server.forward_port), "ext", label, str(n), "1"],
                               capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
            self.assertEqual(r.returncode, 0, "fluent-logger to %s: %s%s" % (server.name, r.stdout, r.stderr))

        def graphite(server, line):
            with socket.create_connection(("127.0.0.1", server.graphite_port), timeout=5) as c:
                c.sendall(line.encode())

        # External senders: forward records to the leader, Graphite points
        # to a follower -- each relayed to the two others, stored once.
        forward(leader, "before", 20)
        now = int(time.time())
        graphite(followers[0], "ha.external.before %d %d\n" % (42, now))
        for s in servers:
            got = wait_until(lambda: (lambda rows: rows if len(rows) >= 20 else None)(self.tag_lines(s, "ext.before")),
                             20, "the leader's forward records on %s" % s.name)
            self.assertEqual(sorted(got), sorted("fluent-logger before %d" % i for i in range(20)),
                             "%s holds every external record once" % s.name)
            wait_until(lambda: 42 in self.points(s, "ha.external.before"), 20,
                       "the follower's Graphite point on %s" % s.name)
        wait_until(lambda: len(self.tag_lines(upstream, "ext.before")) >= 20, 20, "the records relayed upstream")
        time.sleep(1)
        self.assertEqual(len(self.tag_lines(upstream, "ext.before")), 20, "only the leader relays upstream")
        agent_series = "stele.node.hostA.memory.*"
        wait_until(lambda: all(self.points(s, agent_series) for s in servers), 30, "the agent's metrics on every server")

        # The leader dies: the new one holds everything the old one had.
        history = set(self.app_lines(leader))
        node_points = len(self.points(leader, agent_series))
        leader.proc.kill9()
        new = self.wait_leader(servers, 15, exclude=(leader.name,))
        other = next(s for s in servers if s not in (leader, new))
        wait_until(lambda: history <= set(self.app_lines(new)), 20, "the old leader's log history on the new leader")
        log("%d task log lines held by the old leader are all on %s" % (len(history), new.name))
        self.assertGreaterEqual(len(self.points(new, agent_series)), node_points, "no agent metric history missing")
        self.assertEqual(len(self.tag_lines(new, "ext.before")), 20)

        # What the new leader receives next reaches the surviving follower.
        forward(new, "after", 10)
        graphite(new, "ha.external.after %d %d\n" % (7, int(time.time())))
        for s in (new, other):
            wait_until(lambda: len(self.tag_lines(s, "ext.after")) == 10, 20, "the new leader's records on %s" % s.name)
            wait_until(lambda: 7 in self.points(s, "ha.external.after"), 20, "the new leader's point on %s" % s.name)
        wait_until(lambda: len(self.tag_lines(upstream, "ext.after")) >= 10, 20, "the new leader relaying upstream")
        before = len(self.app_lines(other))
        wait_until(lambda: len(self.app_lines(other)) > before, 20, "the agent still shipping to the follower")

    @staticmethod
    def app_lines(server):
        """The app's task output stored on `server` (its own store, not the leader's)."""
        text = HaTest.local_logs(server, {"app": "/web"})
        return [(r.get("time"), json.dumps(r.get("record", r), sort_keys=True)) for r in
                (json.loads(line) for line in text.splitlines() if line.strip())]

    @staticmethod
    def tag_lines(server, tag):
        text = HaTest.local_logs(server, {"tag": tag})
        return [json.loads(line).get("record", {}).get("log") for line in text.splitlines() if line.strip()]

    @staticmethod
    def local_logs(server, params):
        q = dict(params, limit=10000)
        return stelelib.get_text(server.url + "/api/v1/logs?" + urllib.parse.urlencode(q), timeout=10)

    @staticmethod
    def points(server, target):
        """Non-null values of `target` over the last 10 minutes, from `server`'s own store."""
        q = urllib.parse.urlencode({"target": target, "from": "-10min", "format": "json"})
        text = stelelib.get_text(server.url + "/render?" + q, timeout=10)
        return [v for series in json.loads(text) for v, _ in series["datapoints"] if v is not None]

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
