"""Cluster and HA on test hosts made of network namespaces (tests/integration/
netns.py): three server hosts, each running an etcd member (Debian's
etcd-server) and a `stele server` on the three-member etcd store, and three
agent hosts, talking only over veth links on 10.213.7.0/24. The test runs in a
seventh "client" host.

An app of 2 instances with `hostname UNIQUE`: a crashed host's instance is
replaced on the free agent; a second host cut off (partitioned) fences
itself — its instance stops — and the missing instance waits with a visible
reason; both hosts back → exactly 2 instances on distinct hosts; an agent with
a wrong join token is refused and a viewer token cannot deploy; the leader
killed mid-deploy → the deployment completes under a new leader, which holds
the old one's whole log and metric history (agents ship to every server,
servers relay external senders' records to each other); a follower killed →
a git push, a rollback, log and metric queries still work; every
server restarted → the same apps, releases and tasks.

Run (root): STELE_BIN=build/stele python3 tests/integration/test_netns_cluster.py -v
Task ports: 32640-32679 inside the agent hosts' namespaces.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import netns  # noqa: E402
import stelelib  # noqa: E402
from stelelib import STELE, Api, SteleTestCase, get_text, http, log, wait_until  # noqa: E402

HOSTS = {"client": 2, "s1": 11, "s2": 12, "s3": 13, "a1": 21, "a2": 22, "a3": 23, "a4": 24}
SERVERS = ["s1", "s2", "s3"]
AGENTS = ["a1", "a2", "a3"]
TOKEN = "stl_netns_admin_token_for_the_test_0001"
JOIN = "stl_netns_join_token_for_the_test_00001"
AGENT_TIMEOUT = 6
APP = "/uniq"


class TokenApi(Api):
    def call(self, method, path, body=None, expect=None, timeout=10):
        status, doc = http(method, self.url + path, body, timeout=timeout, headers={"Authorization": "Bearer " + TOKEN})
        if expect is not None:
            ok = status in expect if isinstance(expect, (tuple, list, set)) else status == expect
            if not ok:
                raise stelelib.HttpError("%s %s -> %d (wanted %s): %s" % (method, path, status, expect, str(doc)[:2000]))
        return status, doc


def app_spec(tag):
    """Binds the host's address (not loopback): the server's probes and the
    test reach it over the links."""
    return {
        "id": APP,
        "cmd": ("printf '%s %s\\n' \"$STELE_TASK_ID\" \"$TAG\" > index.html && echo ok > health && "
                "exec python3 -m http.server --bind 0.0.0.0 \"$PORT0\""),
        "env": {"TAG": tag},
        "cpus": 0.1, "mem": 64, "instances": 2,
        "constraints": [["hostname", "UNIQUE"]],
        "portDefinitions": [{"port": 0, "name": "http"}],
        "healthChecks": [{"protocol": "HTTP", "path": "/health", "portIndex": 0, "gracePeriodSeconds": 5,
                          "intervalSeconds": 1, "timeoutSeconds": 1, "maxConsecutiveFailures": 2}],
        "upgradeStrategy": {"minimumHealthCapacity": 1, "maximumOverCapacity": 1},
    }


class NetnsClusterTest(SteleTestCase):

    def setUp(self):
        super().setUp()
        prefix = os.environ.get("STELE_NETNS_PREFIX")
        if not prefix:
            self.skipTest(netns.available() or "not inside the test hosts (run this file directly)")
        if not shutil.which("etcd"):
            self.skipTest("no etcd binary on PATH (Debian's etcd-server; scripts/bootstrap installs it)")
        self.net = netns.Cluster(HOSTS, prefix=prefix)
        self.servers, self.agents = {}, {}

    # ---- processes on the hosts

    def start_etcd(self):
        members = ",".join("e%s=http://%s:2380" % (h, self.net.addr(h)) for h in SERVERS)
        for h in SERVERS:
            a = self.net.addr(h)
            self.h.spawn("etcd-" + h, self.net.argv(h, [
                shutil.which("etcd"), "--name", "e" + h, "--data-dir", self.h.path("etcd-" + h, "data"),
                "--listen-client-urls", "http://%s:2379" % a, "--advertise-client-urls", "http://%s:2379" % a,
                "--listen-peer-urls", "http://%s:2380" % a, "--initial-advertise-peer-urls", "http://%s:2380" % a,
                "--initial-cluster", members, "--initial-cluster-state", "new",
                "--initial-cluster-token", self.net.prefix + "etcd"]))

        wait_until(lambda: all(stelelib.etcd_healthy("http://%s:2379" % self.net.addr(h)) for h in SERVERS), 30,
                   "the three etcd members to be healthy")
        return "etcd://" + ",".join("%s:2379" % self.net.addr(h) for h in SERVERS)

    def start_server(self, h):
        a = self.net.addr(h)
        argv = [STELE, "server", "--data-dir", os.path.join(self.h.tmp, "srv-" + h), "--listen", a + ":7070",
                "--hostname", h, "--store", self.etcd_url, "--leader-ttl", "3",
                "--agent-timeout", str(AGENT_TIMEOUT), "--deploy-timeout", "90",
                "--forward-listen", a + ":24224", "--graphite-listen", a + ":2003", "--router-listen", "off",
                "--probe-interval", "0", "--token", TOKEN, "--join-token", JOIN]
        self.servers[h] = self.h.spawn("server-" + h, self.net.argv(h, argv))
        api = TokenApi("http://%s:7070" % a)
        wait_until(api.ping, 20, "server %s to answer /ping" % h)
        return api

    def start_agent(self, h, join=JOIN):
        a = self.net.addr(h)
        root = os.path.join(self.h.tmp, "agent-" + h)
        os.makedirs(root, exist_ok=True)
        if root not in self.h.task_roots:
            self.h.task_roots.append(root)
        urls = ",".join("http://%s:7070" % self.net.addr(s) for s in SERVERS)
        argv = [STELE, "agent", "--server", urls, "--data-dir", os.path.join(root, "agent"), "--hostname", h,
                "--agent-id", "agent-" + h, "--ports", "32640-32679", "--resources", "cpus=2,mem=2048,disk=10000",
                "--agent-timeout", str(AGENT_TIMEOUT), "--recovery-timeout", "60", "--advertise-addr", a,
                "--metrics-interval", "10", "--join-token", join]
        self.agents[h] = self.h.spawn("agent-" + h, self.net.argv(h, argv))

    # ---- views

    def leader(self, exclude=()):
        """The API of the server all live ones agree leads."""
        def agreed():
            views = {}
            for h in SERVERS:
                if h in exclude:
                    continue
                try:
                    status, doc = http("GET", "http://%s:7070/api/v1/leader" % self.net.addr(h), timeout=2)
                except OSError:
                    return None
                if status != 200 or not doc.get("leader"):
                    return None
                views[h] = doc
            ids = {v["leader"]["id"] for v in views.values()}
            selves = [h for h, v in views.items() if v["self"]]
            return selves[0] if len(ids) == 1 and selves == list(ids) else None
        h = wait_until(agreed, 20, "the servers to agree on a leader")
        return h, TokenApi("http://%s:7070" % self.net.addr(h))

    def live(self, api):
        return [t for t in api.get("/api/v1/apps/uniq/tasks")["tasks"] if t["state"] in ("staging", "starting", "running")]

    def hosts_of(self, tasks):
        nodes = {n["id"]: n["hostname"] for n in self.api.get("/api/v1/nodes")["nodes"]}
        return sorted(nodes.get(t["agentId"], "?") for t in tasks)

    def settled(self, api, n, tag=None, excluded=()):
        live = self.live(api)
        if len(live) != n or not all(t["state"] == "running" and t.get("healthy") for t in live):
            return None
        hosts = self.hosts_of(live)
        if len(set(hosts)) != n or set(hosts) & set(excluded):
            return None
        if tag and not all(t.get("release") == tag for t in live):
            return None
        return live

    # ---- logs and metrics, each from one server's own stores (followers answer these themselves)

    def url(self, h):
        return "http://%s:7070" % self.net.addr(h)

    def logs(self, h, **params):
        q = urllib.parse.urlencode(dict(params, limit=10000))
        text = get_text(self.url(h) + "/api/v1/logs?" + q, timeout=10)
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def app_lines(self, h):
        return [(r.get("time"), json.dumps(r.get("record", r), sort_keys=True)) for r in self.logs(h, app=APP)]

    def tag_lines(self, h, tag):
        return [r.get("record", {}).get("log") for r in self.logs(h, tag=tag)]

    def points(self, h, target):
        q = urllib.parse.urlencode({"target": target, "from": "-10min", "format": "json"})
        doc = json.loads(get_text(self.url(h) + "/render?" + q, timeout=10))
        return [v for series in doc for v, _ in series["datapoints"] if v is not None]

    def forward_records(self, h, label, n):
        from test_forward import FLUENT_LOGGER_JS, NODE_MODULES, have_node_clients
        if not have_node_clients():
            self.fail("node or the npm clients are missing: run scripts/bootstrap (cd tests/integration && npm ci)")
        path = self.h.path("clients", "fluent-logger.js")
        with open(path, "w") as f:
            f.write(FLUENT_LOGGER_JS)
        env = dict(os.environ, NODE_PATH=NODE_MODULES, FLUENT_HOST=self.net.addr(h))
        r = subprocess.run(["node", path, "24224", "ext", label, str(n), "1"], capture_output=True, text=True,
                           timeout=60, env=env, stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0, "fluent-logger to %s: %s%s" % (h, r.stdout, r.stderr))

    def graphite(self, h, line):
        with socket.create_connection((self.net.addr(h), 2003), timeout=5) as c:
            c.sendall(line.encode())

    def answer(self, task):
        return get_text("http://%s:%d/" % (self.net.addr(self.hosts_of([task])[0]), task["ports"][0]), timeout=2)

    def test_01_cluster_survives_hosts_and_leaders(self):
        self.etcd_url = self.start_etcd()
        for h in SERVERS:
            self.start_server(h)
        leader, self.api = self.leader()
        log("leader: %s" % leader)
        for h in AGENTS:
            self.start_agent(h)
        wait_until(lambda: len([n for n in self.api.get("/api/v1/nodes")["nodes"] if n["state"] == "active"]) == 3,
                   30, "three agents registered with the leader")

        # 2 instances on distinct hosts, served over the links.
        self.api.post("/v2/apps", app_spec("v1"))
        live = wait_until(lambda: self.settled(self.api, 2), 60, "2 healthy instances on distinct hosts")
        for t in live:
            self.assertIn("v1", self.answer(t))
        first_hosts = self.hosts_of(live)
        log("instances on %s" % first_hosts)

        # A crashed host: its instance is lost and replaced on the free agent.
        crashed = first_hosts[0]
        self.net.crash(crashed)
        live = wait_until(lambda: self.settled(self.api, 2, excluded=(crashed,)), AGENT_TIMEOUT + 40,
                          "the lost instance replaced on the free agent")
        log("%s crashed; instances now on %s" % (crashed, self.hosts_of(live)))
        free = [h for h in AGENTS if h not in self.hosts_of(live)]
        self.assertEqual(free, [crashed])

        # A second host cut off: it fences itself (its instance stops), and
        # the missing instance waits, with the reason shown.
        cut = self.hosts_of(live)[0]
        cut_task = next(t for t in live if self.hosts_of([t])[0] == cut)
        self.net.link(cut, False)

        def fenced():
            pids = self.net.pids(cut)
            return not any("http.server" in " ".join(stelelib.proc_cmdline(p)) for p in pids)
        wait_until(fenced, AGENT_TIMEOUT + 15, "the partitioned host to stop its instance (self-fencing)")
        self.assertTrue(self.agents[cut].alive(), "the partitioned agent keeps running")

        def waiting():
            app = self.api.app(APP)
            return app.get("waiting") and len(self.live(self.api)) == 1 and app
        app = wait_until(waiting, AGENT_TIMEOUT + 30, "the missing instance to wait with a reason")
        log("waiting: %s" % app["waiting"])
        self.assertIn("hostname", app["waiting"], "the reason names the constraint that no free agent meets")
        self.assertNotIn(cut_task["id"], [t["id"] for t in self.live(self.api)], "the cut host's task is lost")

        # Both back: exactly 2 instances on distinct hosts, and they stay so.
        self.net.link(cut, True)
        self.net.link(crashed, True)
        self.start_agent(crashed)
        wait_until(lambda: len([n for n in self.api.get("/api/v1/nodes")["nodes"] if n["state"] == "active"]) == 3,
                   30, "the returning agents to register again")
        live = wait_until(lambda: self.settled(self.api, 2), 40, "2 instances on distinct hosts")
        for _ in range(6):
            self.assertIsNotNone(self.settled(self.api, 2), "never more or fewer than 2")
            time.sleep(0.5)

        # Security across hosts: a wrong join token is refused; a viewer cannot deploy.
        self.start_agent("a4", join="stl_not_the_join_token_of_this_cluster")
        wait_until(lambda: "refused the join token" in self.agents["a4"].output(), 20, "a4 to be refused")
        self.assertNotIn("a4", [n["hostname"] for n in self.api.get("/api/v1/nodes")["nodes"]])
        self.agents["a4"].stop()
        viewer = self.api.post("/api/v1/tokens", {"name": "watcher", "role": "viewer"})["token"]
        status, doc = http("PUT", self.api.url + "/v2/apps/uniq", app_spec("v9"),
                           headers={"Authorization": "Bearer " + viewer})
        self.assertEqual(status, 403, doc)
        self.assertEqual(self.api.app(APP)["release"], 1, "the viewer's deploy changed nothing")
        # Through a follower (which proxies to the leader): the same rules.
        via = self.url(next(h for h in SERVERS if h != leader))
        status, doc = http("PUT", via + "/v2/apps/uniq", app_spec("v9"))
        self.assertEqual(status, 401, "a tokenless write through a follower: %s" % doc)
        status, doc = http("PUT", via + "/v2/apps/uniq", app_spec("v9"), headers={"Authorization": "Bearer " + viewer})
        self.assertEqual(status, 403, doc)
        self.assertEqual(self.api.app(APP)["release"], 1, "nothing changed through the follower")
        status, doc = http("GET", via + "/api/v1/apps/uniq/tasks", headers={"Authorization": "Bearer " + viewer})
        self.assertEqual((status, len(doc["tasks"])), (200, len(self.api.get("/api/v1/apps/uniq/tasks")["tasks"])),
                         "a read through a follower answers the leader's view")

        # External senders: forward records (npm fluent-logger) to the
        # leader, a Graphite point to a follower -- relayed to every server.
        a_follower = next(h for h in SERVERS if h != leader)
        self.forward_records(leader, "netns", 10)
        self.graphite(a_follower, "netns.external %d %d\n" % (5, int(time.time())))
        history = set(self.app_lines(leader))
        for h in SERVERS:
            wait_until(lambda: len(self.tag_lines(h, "ext.netns")) == 10 and 5 in self.points(h, "netns.external"),
                       20, "the external records and point on %s" % h)

        # The leader killed mid-deploy: the new one completes it.
        self.api.put("/v2/apps/uniq", app_spec("v2"))
        wait_until(lambda: any(t.get("release") == 2 for t in self.live(self.api)), 30, "the upgrade to start")
        self.assertIsNotNone(self.api.app(APP)["deployment"])
        self.servers[leader].kill9()
        killed = time.time()
        leader2, self.api = self.leader(exclude=(leader,))
        log("leader %s killed; %s leads after %.1f s" % (leader, leader2, time.time() - killed))
        self.assertLess(time.time() - killed, 10)
        live = wait_until(lambda: self.api.app(APP)["deployment"] is None and self.settled(self.api, 2, tag=2), 90,
                          "the deployment to complete under the new leader")
        for t in live:
            self.assertIn("v2", self.answer(t))
        # ... and holds the whole log and metric history the old one had.
        wait_until(lambda: history <= set(self.app_lines(leader2)), 20, "the old leader's log history on " + leader2)
        self.assertEqual(sorted(self.tag_lines(leader2, "ext.netns")), sorted("fluent-logger netns %d" % i for i in range(10)))
        self.assertIn(5, self.points(leader2, "netns.external"))
        log("%d log lines of %s held by the old leader are on %s" % (len(history), APP, leader2))

        # A follower killed: push, rollback, log and metric queries still work.
        follower = next(h for h in SERVERS if h not in (leader, leader2))
        self.servers[follower].kill9()
        url = self.api.url
        self.h.run([STELE, "--api", url, "--token", TOKEN, "create", "hello"])
        from test_pipeline import Repo  # examples/hello in a git work tree
        repo = Repo(self.h, TOKEN)
        repo.git("remote", "add", "stele", url + "/git/hello.git")
        rc, out = repo.push()
        self.assertEqual(rc, 0, out)
        def release_1():
            doc = self.api.get("/api/v1/apps/hello/releases/1")
            rel = doc["release"] if isinstance(doc.get("release"), dict) else doc
            return rel if rel.get("status") in ("ready", "failed") else None
        rel = wait_until(release_1, 180, "the pushed release to finish")
        self.assertEqual(rel["status"], "ready", out)
        self.api.post("/api/v1/apps/uniq/rollback", {"release": 1})
        live = wait_until(lambda: self.api.app(APP)["deployment"] is None and self.settled(self.api, 2, tag=1), 60,
                          "the rollback to release 1")
        for t in live:
            self.assertIn("v1", self.answer(t))
        logs = get_text(url + "/api/v1/logs?app=/uniq&limit=20", timeout=10)
        self.assertIn("GET /health", logs, "the instances' output is queryable")
        found = wait_until(lambda: self.api.get("/metrics/find?query=stele.*"), 30, "agent metrics")
        self.assertTrue(found)
        self.start_server(follower)

        # Every server restarted: the same state.
        current = self.api.app(APP)["release"]
        before = (current, sorted(t["id"] for t in live))
        for h in SERVERS:
            if self.servers[h].alive():
                self.servers[h].stop()
        for h in SERVERS:
            self.start_server(h)
        _, self.api = self.leader()
        wait_until(lambda: self.settled(self.api, 2, tag=current), 40, "the instances back under the restarted servers")
        after = (self.api.app(APP)["release"], sorted(t["id"] for t in self.settled(self.api, 2, tag=current)))
        self.assertEqual(before, after, "release and tasks survive restarting every server")
        self.assertEqual(sorted(r["number"] for r in self.api.get("/api/v1/apps/uniq/releases")["releases"]), [1, 2])

        # The leader may now be the server that was down during the push: it
        # copies the artifact and the repository it lacks from a follower.
        hello = self.api.get("/api/v1/apps/hello/releases/1")
        hello = hello["release"] if isinstance(hello.get("release"), dict) else hello
        auth = {"Authorization": "Bearer " + TOKEN}
        wait_until(lambda: http("GET", self.api.url + "/api/v1/artifacts/" + hello["artifact"], headers=auth)[0] == 200,
                   30, "the leader to hold release hello/1's artifact")
        wait_until(lambda: "refs/heads/main" in self.ls_remote(self.api.url), 30, "the leader to hold hello's repository")

        # Backup of the running cluster (through whichever server; the CLI
        # finds the leader), restored into a fresh data dir: a server started
        # on it has the same apps and releases, artifacts and repositories.
        backup = self.h.path("cluster-backup.tar")
        urls = ",".join(self.url(h) for h in SERVERS)
        out = self.h.run([STELE, "--api", urls, "--token", TOKEN, "backup", backup], timeout=300).stdout
        log("backup: " + out.strip().splitlines()[-1])
        fresh = os.path.join(self.h.tmp, "restored")
        self.h.run([STELE, "restore", backup, "--data-dir", fresh], timeout=120)
        a = self.net.addr("client")
        self.h.spawn("restored", [STELE, "server", "--data-dir", fresh, "--listen", a + ":7071", "--token", TOKEN,
                                  "--forward-listen", "off", "--graphite-listen", "off", "--router-listen", "off"])
        restored = TokenApi("http://%s:7071" % a)
        wait_until(restored.ping, 20, "the restored server to answer /ping")
        self.assertEqual(self.catalog(restored), self.catalog(self.api), "the same apps and releases after restore")
        for name in ("uniq", "hello"):
            for rel in restored.get("/api/v1/apps/%s/releases" % name)["releases"]:
                if rel.get("artifact"):
                    status, _ = http("GET", restored.url + "/api/v1/artifacts/" + rel["artifact"],
                                     headers={"Authorization": "Bearer " + TOKEN})
                    self.assertEqual(status, 200, "release %s/%d's artifact restored" % (name, rel["number"]))
        self.assertIn("refs/heads/main", self.ls_remote(restored.url), "the pushed repository restored")

    @staticmethod
    def ls_remote(url):
        r = subprocess.run(["git", "ls-remote", url + "/git/hello.git"], capture_output=True, text=True,
                           timeout=30, env=dict(os.environ, GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="http.extraHeader",
                                                GIT_CONFIG_VALUE_0="Authorization: Bearer " + TOKEN))
        return r.stdout

    @staticmethod
    def catalog(api):
        """Apps, and each app's releases: number, status and artifact."""
        out = {}
        for a in api.get("/api/v1/apps")["apps"]:
            name = a["id"].strip("/")
            out[a["id"]] = sorted((r["number"], r.get("status"), r.get("artifact"))
                                  for r in api.get("/api/v1/apps/%s/releases" % name)["releases"])
        return out


if __name__ == "__main__":
    if os.environ.get("STELE_NETNS_PREFIX") or netns.available():
        stelelib.main()  # inside the client host, or skipping with the reason
    else:
        cluster = netns.Cluster(HOSTS).create()
        sys.exit(netns.run_inside(cluster, "client"))
