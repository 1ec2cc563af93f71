"""Docker containerizer (issue 6): Marathon DOCKER apps run as containers on
the host network through the Engine API -- serving on 127.0.0.1, rolling
upgrades, a killed container replaced, containers kept across an agent
restart, the memory limit enforced, logs queryable, non-HOST networks refused.

Needs a Docker engine on /var/run/docker.sock (scripts/docker-engine) and the
image stele/busybox:latest (scripts/docker-base-image); skipped, saying so,
when the engine does not answer. No container address other than 127.0.0.1
is ever contacted.

Run: STELE_BIN=build/stele python3 tests/integration/test_docker.py -v
Task ports: 32500-32539.
"""

import http.client as httpclient
import json
import os
import socket
import sys
import time
import unittest
import urllib.parse

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import stelelib  # noqa: E402
from stelelib import SteleTestCase, get_text, wait_until  # noqa: E402

SOCKET = "/var/run/docker.sock"
IMAGE = "stele/busybox:latest"
PORTS = "32500-32539"
APP = "/dock/web"


class _UnixConnection(httpclient.HTTPConnection):
    def __init__(self, path, timeout=10):
        super().__init__("docker", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


def engine(method, path, body=None, timeout=10):
    """One Engine API call over the unix socket: (status, decoded JSON or None)."""
    c = _UnixConnection(SOCKET, timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        c.request(method, "/v1.41" + path, body=data, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        raw = r.read()
    finally:
        c.close()
    try:
        return r.status, json.loads(raw) if raw else None
    except ValueError:
        return r.status, raw.decode(errors="replace")


def engine_problem():
    """Why the tests cannot run here, or None."""
    try:
        status, _ = engine("GET", "/_ping", timeout=3)
    except OSError as e:
        return "no Docker engine answers on %s (%s); start one with scripts/docker-engine" % (SOCKET, e)
    if status != 200:
        return "the Docker engine on %s answered /_ping with %d" % (SOCKET, status)
    if engine("GET", "/images/%s/json" % IMAGE)[0] != 200:
        return "image %s is missing; make it with scripts/docker-base-image" % IMAGE
    return None


def containers(agent_id, app_id=None):
    labels = ["stele.agent=" + agent_id]
    if app_id:
        labels.append("stele.app=" + app_id)
    q = urllib.parse.quote(json.dumps({"label": labels}))
    status, doc = engine("GET", "/containers/json?all=1&filters=" + q)
    assert status == 200, doc
    return doc


def web_app(instances=2, tag="v1", **extra):
    spec = {
        "id": APP,
        "cmd": ("echo started-$STELE_TASK_ID && mkdir -p /tmp/www && echo hello-$STELE_RELEASE-$TAG > /tmp/www/index.html"
                " && exec httpd -f -p 127.0.0.1:$PORT0 -h /tmp/www"),
        "container": {"type": "DOCKER", "docker": {"image": IMAGE, "network": "HOST"}},
        "env": {"TAG": tag},
        "cpus": 0.1,
        "mem": 32,
        "instances": instances,
        "portDefinitions": [{"port": 0, "name": "http"}],
        "healthChecks": [{"protocol": "HTTP", "path": "/", "portIndex": 0, "gracePeriodSeconds": 5,
                          "intervalSeconds": 1, "timeoutSeconds": 1, "maxConsecutiveFailures": 2}],
        "upgradeStrategy": {"minimumHealthCapacity": 1, "maximumOverCapacity": 1},
    }
    spec.update(extra)
    return spec


def answer(task):
    try:
        return get_text("http://127.0.0.1:%d/" % task["ports"][0], timeout=2).strip()
    except OSError:
        return None


PROBLEM = engine_problem()


@unittest.skipIf(PROBLEM, PROBLEM or "")
class DockerTest(SteleTestCase):

    def run(self, result=None):
        try:
            return super().run(result)
        finally:
            # Whatever a failed test left behind, by this test's agent label only.
            agent_id = getattr(self, "agent_id", None)
            if agent_id:
                for c in containers(agent_id):
                    engine("DELETE", "/containers/%s?force=1" % c["Id"])

    def start_cluster(self, name, **agent_extra):
        self.agent_id = "agent-dock-" + name
        self.server = self.h.server()
        self.api = self.server.api
        self.agent = self.h.agent(self.server, "agent", "dockhost", PORTS, agent_id=self.agent_id, **agent_extra)
        wait_until(lambda: [n for n in self.api.get("/api/v1/nodes")["nodes"] if n["state"] == "active"], 15,
                   "agent active")

    def make_container(self, labels):
        status, doc = engine("POST", "/containers/create", {"Image": IMAGE, "Cmd": ["sleep", "600"], "Labels": labels,
                                                            "HostConfig": {"NetworkMode": "host"}})
        self.assertEqual(status, 201, doc)
        return doc["Id"]

    def running_containers(self):
        return [c for c in containers(self.agent_id, APP) if c["State"] == "running"]

    def test_01_prebuilt_image_serves_on_loopback_with_limits_labels_and_logs(self):
        self.start_cluster("serve")
        node = self.api.get("/api/v1/nodes")["nodes"][0]
        self.assertIn("docker", node["containerizers"], node)
        self.assertIsNone(node.get("dockerUnavailable"), node)
        self.api.post("/v2/apps", web_app(2))
        tasks = self.wait_healthy(self.api, APP, 2, timeout=40)
        for t in tasks:
            text = answer(t)
            self.assertIsNotNone(text, t)
            self.assertRegex(text, r"^hello-\d+-v1$")
        cs = self.running_containers()
        self.assertEqual(len(cs), 2, cs)
        task_ids = sorted(t["id"] for t in tasks)
        self.assertEqual(sorted(c["Labels"]["stele.task"] for c in cs), task_ids)
        uid = stelelib.task_user_uid()
        for c in cs:
            self.assertEqual(c["Labels"]["stele.app"], APP)
            self.assertEqual(c["Labels"]["stele.agent"], self.agent_id)
            self.assertTrue(c["Labels"]["stele.release"].isdigit(), c["Labels"])
            _, info = engine("GET", "/containers/%s/json" % c["Id"])
            self.assertEqual(info["HostConfig"]["NetworkMode"], "host")
            self.assertEqual(info["HostConfig"]["Memory"], 32 * 1024 * 1024)
            self.assertEqual(info["HostConfig"]["RestartPolicy"].get("Name", ""), "")
            self.assertEqual(info["Config"]["User"].split(":")[0], str(uid), info["Config"]["User"])
            self.assertTrue(any(e.startswith("PORT0=") for e in info["Config"]["Env"]), info["Config"]["Env"])

        # The container's stdout went through the executor into the log store.
        def logged():
            q = urllib.parse.urlencode({"app": APP, "limit": 1000})
            text = get_text(self.api.url + "/api/v1/logs?" + q, timeout=5)
            return all(("started-" + tid) in text for tid in task_ids) and text
        text = wait_until(logged, 30, "both containers' stdout in GET /api/v1/logs?app=")
        rows = [json.loads(line) for line in text.splitlines() if "started-" in line]
        self.assertTrue(all("stdout" in json.dumps(r) for r in rows), rows)

    def test_02_rolling_upgrade_replaces_containers(self):
        self.start_cluster("upgrade")
        self.api.post("/v2/apps", web_app(2, "v1"))
        old = self.wait_healthy(self.api, APP, 2, timeout=40)
        old_ids = {t["id"] for t in old}
        self.api.put("/v2/apps" + APP, web_app(2, "v2"))
        new = wait_until(lambda: (lambda ts: ts if len(ts) == 2 and not ({t["id"] for t in ts} & old_ids)
                                  and all((answer(t) or "").endswith("-v2") for t in ts) else None)(
                                      self.api.healthy_tasks(APP)), 60, "two healthy v2 tasks")
        wait_until(lambda: len(containers(self.agent_id, APP)) == 2, 30, "old containers removed")
        self.assertEqual(sorted(c["Labels"]["stele.task"] for c in containers(self.agent_id, APP)),
                         sorted(t["id"] for t in new))

    def test_03_killed_container_is_replaced(self):
        self.start_cluster("kill")
        self.api.post("/v2/apps", web_app(1))
        [task] = self.wait_healthy(self.api, APP, 1, timeout=40)
        [c] = self.running_containers()
        status, _ = engine("POST", "/containers/%s/kill?signal=KILL" % c["Id"])
        self.assertEqual(status, 204)

        def replaced():
            ts = self.api.healthy_tasks(APP)
            return ts if len(ts) == 1 and ts[0]["id"] != task["id"] else None
        [new] = wait_until(replaced, 40, "a replacement task")
        self.assertIsNotNone(answer(new))
        wait_until(lambda: [x["Labels"]["stele.task"] for x in containers(self.agent_id, APP)] == [new["id"]], 30,
                   "the killed container removed, one container left")

    def test_04_agent_restart_keeps_and_reattaches_containers(self):
        self.start_cluster("restart")
        self.api.post("/v2/apps", web_app(2))
        before = self.wait_healthy(self.api, APP, 2, timeout=40)
        cs_before = sorted(c["Id"] for c in self.running_containers())
        # Left by an executor that died: this agent's label, a task nobody runs.
        orphan = self.make_container({"stele.agent": self.agent_id, "stele.task": "dock_web-r1.9.1", "stele.app": APP})
        # Another agent's container is never touched.
        foreign = self.make_container({"stele.agent": "agent-dock-other", "stele.task": "x-r1.0.1"})
        self.addCleanup(engine, "DELETE", "/containers/%s?force=1" % foreign)
        self.agent.proc.kill9()
        time.sleep(1)
        self.agent.start()
        wait_until(lambda: [n for n in self.api.get("/api/v1/nodes")["nodes"] if n["state"] == "active"], 15,
                   "agent re-registered")
        time.sleep(3)  # a few health intervals: nothing may be replaced
        after = self.wait_healthy(self.api, APP, 2, timeout=30)
        self.assertEqual(sorted(t["id"] for t in after), sorted(t["id"] for t in before))
        self.assertEqual(sorted(c["Id"] for c in self.running_containers()), cs_before)
        self.assertEqual(len(containers(self.agent_id, APP)), 2)
        self.assertEqual(engine("GET", "/containers/%s/json" % orphan)[0], 404, "the orphan container was removed")
        self.assertEqual(engine("GET", "/containers/%s/json" % foreign)[0], 200, "another agent's container was kept")
        for t in after:
            self.assertIsNotNone(answer(t))
        # Re-attached: a kill through the API still reaches the containers.
        self.api.delete("/v2/apps" + APP)
        wait_until(lambda: not containers(self.agent_id, APP), 30, "containers removed after the app's deletion")

    def test_05_memory_limit_is_enforced_and_reported(self):
        self.start_cluster("oom")
        spec = {"id": "/dock/hog", "cmd": "echo allocating; exec dd if=/dev/zero of=/dev/null bs=96M count=4",
                "container": {"type": "DOCKER", "docker": {"image": IMAGE}},
                "cpus": 0.1, "mem": 16, "instances": 1}
        self.api.post("/v2/apps", spec)

        def oom_event():
            for e in self.api.get("/api/v1/events?since=0")["events"]:
                blob = json.dumps(e)
                if e.get("app") == "/dock/hog" and "memory limit exceeded" in blob:
                    return e
            return None
        e = wait_until(oom_event, 40, "a task failed for its memory limit")
        self.assertIn("out of memory", json.dumps(e), e)

    def test_06_non_host_network_and_privileged_are_refused(self):
        self.server = self.h.server()
        api = self.server.api
        for docker, field in (({"image": IMAGE, "network": "BRIDGE"}, "/container/docker/network"),
                              ({"image": IMAGE, "privileged": True}, "/container/docker/privileged")):
            body = {"id": "/dock/bad", "cmd": "true", "container": {"type": "DOCKER", "docker": docker}}
            for path in ("/v2/apps", "/api/v1/apps"):
                status, doc = api.call("POST", path, body)
                self.assertEqual(status, 422, doc)
                details = {d["path"]: d["errors"] for d in doc["details"]}
                self.assertIn(field, details, doc)
                if field.endswith("network"):
                    self.assertIn("host network", details[field][0])
        self.assertEqual(api.call("GET", "/v2/apps/dock/bad")[0], 404)

    def test_07_agent_without_engine_gets_no_docker_tasks(self):
        self.server = self.h.server()
        api = self.server.api
        missing = self.h.path("no-docker.sock")
        self.h.agent(self.server, "agent", "plainhost", PORTS, agent_id="agent-dock-none", docker_socket=missing)
        node = wait_until(lambda: next((n for n in api.get("/api/v1/nodes")["nodes"] if n["state"] == "active"), None),
                          15, "agent active")
        self.assertEqual(node["containerizers"], ["process"], node)
        self.assertIn(missing, node["dockerUnavailable"], node)
        api.post("/v2/apps", web_app(1))
        app = wait_until(lambda: (lambda a: a if a.get("waiting") else None)(api.app(APP)), 15, "the docker app waiting")
        self.assertIn("no agent has a Docker engine", app["waiting"])
        self.assertIn(missing, app["waiting"])
        self.assertEqual(api.tasks(APP), [])
        # Process tasks still run there.
        api.post("/v2/apps", {"id": "/plain", "cmd": "exec sleep 600", "cpus": 0.1, "mem": 32, "instances": 1})
        wait_until(lambda: [t for t in api.tasks("/plain") if t["state"] == "running"], 20, "the process task running")

    def test_08_container_metrics_under_the_task_names(self):
        self.start_cluster("metrics", metrics_interval=1)
        self.api.post("/v2/apps", web_app(1))
        [task] = self.wait_healthy(self.api, APP, 1, timeout=40)
        [c] = self.running_containers()
        _, info = engine("GET", "/containers/%s/json" % c["Id"])
        # The container lives inside the task's own cgroup, so the collectors
        # read it exactly as a process task's.
        self.assertEqual(info["HostConfig"]["CgroupParent"], "/stele/%s/%s" % (self.agent_id, task["id"]))
        base = "stele.task.dockhost.dock_web-r%d.0." % task["release"]

        def values(metric):
            q = urllib.parse.urlencode({"target": base + metric, "from": "-5min", "format": "json"})
            doc = json.loads(get_text(self.server.url + "/render?" + q, timeout=10))
            return [v for s in doc for v, _ in s["datapoints"] if v]
        mem = wait_until(lambda: values("memory.usage"), 30, "the container's memory series")
        self.assertGreater(max(mem), 100 * 1024, mem)  # httpd and its shell: more than 100 KiB
        wait_until(lambda: values("cpu.usage"), 15, "the container's cpu series")
        limit = wait_until(lambda: values("memory.limit"), 15, "the container's memory limit series")
        self.assertEqual(limit[-1], 32 * 1024 * 1024)

    def test_09_container_of_a_dead_executor_is_swept(self):
        self.start_cluster("sweep")
        self.api.post("/v2/apps", web_app(1))
        [task] = self.wait_healthy(self.api, APP, 1, timeout=40)
        [c] = self.running_containers()
        with open(os.path.join(self.agent.executors_dir(), task["id"], "executor.pid")) as f:
            executor = int(f.read().strip())
        os.kill(executor, 9)  # its watcher goes with it; the container stays behind
        # The agent's periodic sweep (every 60 s) removes the orphan...
        wait_until(lambda: engine("GET", "/containers/%s/json" % c["Id"])[0] == 404, 90, "the orphan container removed")
        # ...and the app ends with one replacement, in its own container.
        def replaced():
            ts = [t for t in self.api.healthy_tasks(APP) if t["id"] != task["id"]]
            cs = [x["Labels"]["stele.task"] for x in self.running_containers()]
            return len(ts) == 1 and cs == [ts[0]["id"]] and answer(ts[0])
        wait_until(replaced, 60, "one healthy replacement in its own container")

    def test_10_command_health_checks_run_inside_the_container(self):
        self.start_cluster("exec")
        # Passes only inside the container: there pid 1 is the app's httpd
        # (on the host it is the host's init), /tmp/www is the container's own
        # and the env is the container's.
        inside = "grep -q httpd /proc/1/cmdline && test -f /tmp/www/index.html && test \"$TAG\" = v1"
        check = {"protocol": "COMMAND", "command": {"value": inside}, "gracePeriodSeconds": 20,
                 "intervalSeconds": 1, "timeoutSeconds": 5, "maxConsecutiveFailures": 3}
        self.api.post("/v2/apps", web_app(1, healthChecks=[check]))
        [task] = self.wait_healthy(self.api, APP, 1, timeout=40)
        [marathon] = self.api.get("/v2/apps" + APP + "/tasks")["tasks"]
        self.assertEqual(marathon["id"], task["id"])
        [result] = marathon["healthCheckResults"]
        self.assertTrue(result["alive"], result)
        self.assertEqual(result["consecutiveFailures"], 0, result)

        # A check that fails (inside the container: $TAG is the container's)
        # has the task killed and replaced, the exit status in the cause.
        sick = "/dock/sick"
        failing = dict(check, command={"value": "echo sick-$TAG; exit 3"}, gracePeriodSeconds=0,
                       maxConsecutiveFailures=2)
        self.api.post("/v2/apps", dict(web_app(1, healthChecks=[failing]), id=sick))
        first = wait_until(lambda: next(iter(self.api.live_tasks(sick)), None), 30, "the sick app's first task")
        cause = "health check failed: command exited with status 3: sick-v1"

        def killed_for_health():
            for e in self.api.get("/api/v1/events?since=0")["events"]:
                if e.get("app") == sick and cause in json.dumps(e):
                    return e
            return None
        wait_until(killed_for_health, 40, "the sick task killed for its health check")
        wait_until(lambda: [t for t in self.api.live_tasks(sick) if t["id"] != first["id"]], 40,
                   "a replacement of the sick task")
        # The healthy app was never touched.
        self.assertEqual([t["id"] for t in self.api.healthy_tasks(APP)], [task["id"]])


if __name__ == "__main__":
    unittest.main()
