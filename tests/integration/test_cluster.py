"""Core platform, cluster behaviour: one server and two agents (hostA, hostB)
running the sample HTTP app; deploy, self-healing, scaling, rolling upgrades,
failed upgrades, a lost agent, the task user and placement constraints.

Run: STELE_BIN=build/stele python3 tests/integration/test_cluster.py -v
Task ports: 31100-31439 (each test its own 40-port block).
"""

import calendar
import os
import signal
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import stelelib  # noqa: E402
from stelelib import (SteleTestCase, app_process, log, pid_alive, proc_uid, sample_app,  # noqa: E402
                      task_answers, task_port, task_user_uid, wait_until)

APP = "/web"


def iso_ms(text):
    """Milliseconds since the epoch of the API's ISO-8601 times (2026-11-27T04:08:08.985Z)."""
    base, _, frac = text.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) * 1000 + int((frac or "0").ljust(3, "0")[:3])


class ClusterTest(SteleTestCase):

    def start_cluster(self, port_base, **server_kw):
        """A server and agents hostA (agent-a) and hostB (agent-b), each with
        20 task ports from port_base."""
        self.server = self.h.server(**server_kw)
        self.api = self.server.api
        self.agents = {}
        for i, host in enumerate(("hostA", "hostB")):
            lo = port_base + 20 * i
            self.agents[host] = self.h.agent(self.server, "agent" + host[-1], host, "%d-%d" % (lo, lo + 19),
                                             agent_id="agent-" + host[-1].lower())
        wait_until(lambda: len(self.active_nodes()) == 2, 15, "both agents registered and active")
        self.host_of = {n["id"]: n["hostname"] for n in self.api.get("/api/v1/nodes")["nodes"]}

    def active_nodes(self):
        return [n for n in self.api.get("/api/v1/nodes")["nodes"] if n["state"] == "active"]

    def deploy(self, spec, expect_healthy=None, timeout=30):
        self.api.call("POST", "/v2/apps", spec, expect=201)
        n = spec["instances"] if expect_healthy is None else expect_healthy
        return self.wait_healthy(self.api, spec["id"], n, timeout=timeout)

    def no_deployment(self, app_id=APP):
        deps = self.api.get("/v2/deployments")
        return not any(d.get("affectedApps") == [app_id] or app_id in (d.get("affectedApps") or []) for d in deps) \
            and self.api.app(app_id)["deployment"] is None

    # ------------------------------------------------------------------

    def test_01_deploy_three_instances_on_two_agents(self):
        self.start_cluster(31100)
        t0 = time.monotonic()
        status, doc = self.api.call("POST", "/v2/apps", sample_app(APP, 3), expect=201)
        self.assertEqual(doc["id"], APP)
        self.assertEqual(doc["instances"], 3)
        wait_until(lambda: self.api.v2app(APP)["tasksHealthy"] == 3, 30, "GET /v2/apps/web tasksHealthy == 3",
                   interval=0.02)
        elapsed = time.monotonic() - t0
        log("MEASURED: POST /v2/apps -> 3 healthy (GET /v2/apps tasksHealthy==3): %.3f s" % elapsed)
        app = self.api.v2app(APP)
        self.assertEqual(app["tasksRunning"], 3)
        self.assertEqual(len(app["tasks"]), 3)
        tasks = self.api.tasks(APP)
        self.assertEqual(sorted(t["seq"] for t in tasks), [0, 1, 2])
        self.assertEqual(sorted(t["id"] for t in tasks), ["web-r1.0.1", "web-r1.1.1", "web-r1.2.1"])
        self.assert_tasks_answer(tasks)
        for t in tasks:
            self.assertIn(" 1 v1", task_answers(t), "index.html names release 1")
        # Spread over both agents, ports from each agent's own range.
        hosts = {self.host_of[t["agentId"]] for t in tasks}
        self.assertEqual(hosts, {"hostA", "hostB"}, "3 instances should spread over both agents")
        for t in tasks:
            lo = 31100 if self.host_of[t["agentId"]] == "hostA" else 31120
            self.assertTrue(lo <= task_port(t) < lo + 20, "task %s port %s outside its agent's range" % (t["id"], task_port(t)))
        wait_until(lambda: self.no_deployment(), 10, "the deployment to finish")
        # Where the time went, from the server's own event times.
        evs = self.api.get("/api/v1/events?since=0")["events"]

        def at(pred):
            ts = [iso_ms(e["time"]) for e in evs if pred(e)]
            return max(ts) if ts else None
        created = at(lambda e: e["type"] == "app_created")
        running = at(lambda e: e["type"] == "task_status" and e["state"] == "running")
        healthy = at(lambda e: e["type"] == "health_changed" and e["alive"])
        log("MEASURED: server events: app_created -> 3 running %d ms, -> 3 healthy %d ms"
            % (running - created, healthy - created))

    def test_02_killed_task_is_replaced_in_its_slot(self):
        self.start_cluster(31140)
        tasks = self.deploy(sample_app(APP, 3))
        victim = sorted(tasks, key=lambda t: t["seq"])[1]
        others = {t["id"] for t in tasks if t["id"] != victim["id"]}
        app_pid = app_process(victim["pid"])
        self.assertIsNotNone(app_pid, "no python3 process under task %s (pid %s)" % (victim["id"], victim["pid"]))
        self.assertNotEqual(app_pid, victim["pid"])
        t0 = time.monotonic()
        os.kill(app_pid, signal.SIGKILL)
        replacement_id = "web-r1.%d.2" % victim["seq"]

        def replaced():
            healthy = {t["id"]: t for t in self.api.healthy_tasks(APP)}
            return replacement_id in healthy and len(healthy) == 3 and healthy
        healthy = wait_until(replaced, 30, "replacement %s healthy and the app back to 3 healthy" % replacement_id)
        log("MEASURED: kill -9 of the app process -> replacement healthy: %.3f s" % (time.monotonic() - t0))
        self.assertEqual(set(healthy) - {replacement_id}, others, "the other tasks must be untouched")
        self.assertEqual(healthy[replacement_id]["seq"], victim["seq"])
        self.assertEqual(self.api.v2app(APP)["tasksHealthy"], 3)
        self.assertEqual(len(self.api.live_tasks(APP)), 3)
        self.assert_tasks_answer(healthy.values())
        self.assertFalse(pid_alive(victim["pid"]), "the killed task's init is still alive")

    def test_03_scale_up_and_down(self):
        self.start_cluster(31180)
        tasks = self.deploy(sample_app(APP, 3))
        wait_until(self.no_deployment, 10, "the first deployment to finish")
        # Marathon: PUT {"instances": 5}.
        self.api.call("PUT", "/v2/apps/web", {"instances": 5}, expect=200)
        five = self.wait_healthy(self.api, APP, 5)
        self.assertEqual({t["id"] for t in tasks} - {t["id"] for t in five}, set(), "scaling up must keep the 3 running tasks")
        self.assert_tasks_answer(five)
        wait_until(self.no_deployment, 10, "the scale-up deployment to finish")
        app = self.api.app(APP)
        self.assertEqual(app["instances"], 5)
        self.assertEqual(app["release"], 1, "a scale is not a new release")
        # Native: POST /scale {"instances": 2}.
        self.api.post("/api/v1/apps/web/scale", {"instances": 2})
        two = self.wait_healthy(self.api, APP, 2)
        wait_until(self.no_deployment, 15, "the scale-down deployment to finish")
        self.assertEqual(len(self.api.live_tasks(APP)), 2)
        self.assertEqual(self.api.v2app(APP)["tasksHealthy"], 2)
        self.assertEqual(self.api.v2app(APP)["instances"], 2)
        self.assert_tasks_answer(two)
        gone = [t for t in five if t["id"] not in {x["id"] for x in two}]
        self.assertEqual(len(gone), 3)
        for t in gone:
            wait_until(lambda: not pid_alive(t["pid"]), 10, "process of scaled-away task %s to exit" % t["id"])
            self.assertIsNone(task_answers(t, timeout=0.5), "scaled-away task %s still answers" % t["id"])

    def test_04_rolling_upgrade_keeps_capacity(self):
        """minimumHealthCapacity 1, maximumOverCapacity 1: all new tasks at once."""
        self.rolling_upgrade(31220, {"minimumHealthCapacity": 1, "maximumOverCapacity": 1})

    def test_04b_rolling_upgrade_one_at_a_time(self):
        """minimumHealthCapacity 1, maximumOverCapacity 0.34: one extra task
        at a time, so the upgrade goes in three steps."""
        self.rolling_upgrade(31400, {"minimumHealthCapacity": 1, "maximumOverCapacity": 0.34}, max_live=4)

    def rolling_upgrade(self, port_base, strategy, max_live=None):
        self.start_cluster(port_base)
        old = self.deploy(sample_app(APP, 3, upgradeStrategy=strategy))
        wait_until(self.no_deployment, 10, "the first deployment to finish")
        samples = []       # (t, tasksHealthy, answering, releases answering)
        problems = []
        stop = threading.Event()

        def sampler():
            while not stop.is_set():
                t = time.monotonic()
                try:
                    healthy = self.api.v2app(APP)["tasksHealthy"]
                    live = [x for x in self.api.tasks(APP) if x["state"] in ("running", "killing")]
                    answering = []
                    for x in live:
                        body = task_answers(x, timeout=1)
                        if body and x["id"] in body:
                            answering.append(x["release"])
                    samples.append((t, healthy, len(answering), sorted(answering), len(self.api.live_tasks(APP))))
                except Exception as e:  # noqa: BLE001
                    problems.append(repr(e))
                time.sleep(max(0.0, 0.1 - (time.monotonic() - t)))

        th = threading.Thread(target=sampler, daemon=True)
        th.start()
        try:
            time.sleep(0.5)
            spec = sample_app(APP, 3, release_tag="v2", upgradeStrategy=strategy)
            t0 = time.monotonic()
            self.api.call("PUT", "/v2/apps/web", spec, expect=200)
            new = self.wait_healthy(self.api, APP, 3, release=2, timeout=60)
            wait_until(self.no_deployment, 30, "the upgrade deployment to leave /v2/deployments")
            log("MEASURED: rolling upgrade of 3 instances PUT -> deployment done: %.3f s" % (time.monotonic() - t0))
            time.sleep(0.5)
        finally:
            stop.set()
            th.join(10)
        self.assertEqual(problems, [], "API errors while sampling")
        self.assertGreaterEqual(len(samples), 5)
        low_api = [s for s in samples if s[1] < 3]
        low_http = [s for s in samples if s[2] < 3]
        log("upgrade sampled %d times; min tasksHealthy %d, min answering %d" %
            (len(samples), min(s[1] for s in samples), min(s[2] for s in samples)))
        self.assertEqual(low_api, [], "GET /v2/apps tasksHealthy fell below 3")
        self.assertEqual(low_http, [], "fewer than 3 instances answered")
        self.assertTrue(any(2 in s[3] and 1 in s[3] for s in samples), "no sample saw old and new answering together")
        if max_live is not None:
            self.assertLessEqual(max(s[4] for s in samples), max_live, "more tasks than maximumOverCapacity allows")
        self.assertEqual(self.api.app(APP)["release"], 2)
        live = self.api.live_tasks(APP)
        self.assertEqual(sorted(t["release"] for t in live), [2, 2, 2])
        self.assertEqual(sorted(t["seq"] for t in live), [0, 1, 2])
        self.assert_tasks_answer(new)
        for t in new:
            self.assertIn(" 2 v2", task_answers(t))
        for t in old:
            wait_until(lambda: not pid_alive(t["pid"]), 10, "old task %s to exit" % t["id"])
        self.assertEqual(self.api.get("/v2/deployments"), [])

    def test_05_failed_upgrade_rolls_back(self):
        self.start_cluster(31260, deploy_timeout=15)
        old = self.deploy(sample_app(APP, 3))
        old_ids = sorted(t["id"] for t in old)
        wait_until(self.no_deployment, 10, "the first deployment to finish")
        outages = []
        stop = threading.Event()

        def prober():
            while not stop.is_set():
                for t in old:
                    body = task_answers(t, timeout=1)
                    if not body or t["id"] not in body:
                        outages.append((time.monotonic(), t["id"]))
                time.sleep(0.2)

        th = threading.Thread(target=prober, daemon=True)
        th.start()
        try:
            bad = sample_app(APP, 3, release_tag="v2", health_path="/nonexistent")
            t0 = time.monotonic()
            _, doc = self.api.call("PUT", "/v2/apps/web", bad, expect=200)
            dep_id = doc["deploymentId"]
            wait_until(lambda: self.api.app(APP)["deployment"] is not None or self.no_deployment(), 5, "deployment visible")

            def failed():
                for d in self.api.get("/api/v1/deployments?all=1")["deployments"]:
                    if d["id"] == dep_id and d["status"] != "running":
                        return d
                return None
            dep = wait_until(failed, 45, "deployment %s to end" % dep_id, interval=0.2)
            elapsed = time.monotonic() - t0
            log("MEASURED: unhealthy release -> deployment %s after %.1f s (deploy-timeout 15)" % (dep["status"], elapsed))
            self.assertEqual(dep["status"], "failed")
            self.assertGreaterEqual(elapsed, 14, "failed before --deploy-timeout")
            self.assertEqual(self.api.app(APP)["release"], 1, "the app must be back on release 1")
            # The new (never healthy) tasks go; the old three remain.
            wait_until(lambda: sorted(t["id"] for t in self.api.live_tasks(APP)) == old_ids, 15,
                       "only the old tasks left")
            self.wait_healthy(self.api, APP, 3, release=1)
            wait_until(self.no_deployment, 10, "no deployment left")
            time.sleep(1)
        finally:
            stop.set()
            th.join(10)
        self.assertEqual(outages, [], "old tasks stopped answering during the failed upgrade")
        self.assertEqual(self.api.get("/v2/deployments"), [])
        self.assertEqual(self.api.v2app(APP)["env"], {"TAG": "v1"}, "GET /v2/apps shows the previous spec")
        for t in old:
            self.assertTrue(pid_alive(t["pid"]))

    def test_06_lost_agent_tasks_replaced_and_killed_on_return(self):
        self.start_cluster(31300)
        tasks = self.deploy(sample_app(APP, 4))
        on_a = [t for t in tasks if self.host_of[t["agentId"]] == "hostA"]
        self.assertEqual(len(on_a), 2, "4 instances should spread 2+2")
        a_pids = {t["id"]: (t["pid"], app_process(t["pid"])) for t in on_a}
        agent_a = self.agents["hostA"]
        t0 = time.monotonic()
        agent_a.proc.kill9()

        def replaced():
            healthy = self.api.healthy_tasks(APP)
            on_b = [t for t in healthy if self.host_of[t["agentId"]] == "hostB"]
            return len(healthy) == 4 and len(on_b) == 4 and healthy
        healthy = wait_until(replaced, 30, "4 healthy tasks, all on hostB")
        log("MEASURED: agent kill -9 -> its tasks replaced and healthy on hostB: %.3f s (agent-timeout %s)"
            % (time.monotonic() - t0, stelelib.AGENT_TIMEOUT))
        # Lost = no heartbeat (every agent-timeout/6) for agent-timeout.
        self.assertGreaterEqual(time.monotonic() - t0, stelelib.AGENT_TIMEOUT - 1, "replaced before the agent timeout")
        node_a = [n for n in self.api.get("/api/v1/nodes")["nodes"] if n["id"] == "agent-a"][0]
        self.assertEqual(node_a["state"], "lost")
        # The old tasks are lost, not live, and their slots hold new tasks.
        for tid in a_pids:
            seq = int(tid.split(".")[1])
            self.assertTrue(any(t["seq"] == seq and t["id"] != tid for t in healthy), "slot %d not refilled" % seq)
            self.assertNotIn(tid, {t["id"] for t in self.api.live_tasks(APP)})
        # Without their agent the executors keep the old tasks (recovery timeout 60 s).
        for tid, (pid, app_pid) in a_pids.items():
            self.assertTrue(pid_alive(pid), "task %s died with its agent" % tid)
        # The agent comes back with its data dir: it re-registers and kills the replaced tasks.
        t1 = time.monotonic()
        agent_a.start()
        wait_until(lambda: any(n["id"] == "agent-a" for n in self.active_nodes()), 15, "agent-a active again")
        for tid, (pid, app_pid) in a_pids.items():
            wait_until(lambda: not pid_alive(pid) and not pid_alive(app_pid), 10,
                       "replaced task %s (pids %s/%s) killed after its agent re-registered" % (tid, pid, app_pid))
        log("MEASURED: agent restart -> replaced tasks' processes gone: %.3f s" % (time.monotonic() - t1))
        healthy = self.wait_healthy(self.api, APP, 4)
        self.assertEqual({self.host_of[t["agentId"]] for t in healthy}, {"hostB"})
        self.assert_tasks_answer(healthy)

    def test_09_tasks_run_as_task_user(self):
        self.start_cluster(31340)
        tasks = self.deploy(sample_app(APP, 2))
        uid = task_user_uid()
        self.assertNotEqual(uid, 0)
        for t in tasks:
            pid = app_process(t["pid"])
            self.assertIsNotNone(pid, "no app process under task %s" % t["id"])
            self.assertEqual(proc_uid(pid), uid, "task %s app process uid" % t["id"])
            with open("/proc/%d/status" % pid) as f:
                uids = [l.split()[1:] for l in f if l.startswith("Uid:")][0]
            self.assertNotIn("0", uids, "some uid of the app process is root: %s" % uids)
            self.assertEqual(set(uids), {str(uid)})

    def test_10_hostname_unique(self):
        self.start_cluster(31380)
        spec = sample_app(APP, 2, constraints=[["hostname", "UNIQUE"]])
        tasks = self.deploy(spec)
        self.assertEqual(sorted(self.host_of[t["agentId"]] for t in tasks), ["hostA", "hostB"])
        wait_until(self.no_deployment, 10, "the first deployment to finish")
        self.api.post("/api/v1/apps/web/scale", {"instances": 3})
        waiting = wait_until(lambda: self.api.app(APP)["waiting"], 10, "the app to say why a task waits")
        self.assertTrue("UNIQUE" in waiting or "hostname" in waiting, "waiting reason: %r" % waiting)
        log("waiting reason: %s" % waiting)
        time.sleep(2)
        healthy = self.api.healthy_tasks(APP)
        self.assertEqual(len(healthy), 2)
        self.assertEqual(len(self.api.live_tasks(APP)), 2)
        self.assertEqual(sorted(self.host_of[t["agentId"]] for t in healthy), ["hostA", "hostB"])


if __name__ == "__main__":
    stelelib.main()
