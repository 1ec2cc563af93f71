"""Core platform, restarts of Stele itself: a server killed right after
accepting an app, and `stele up` stopped and started again (its apps keep
running and are re-attached), then `stele down`.

Run: STELE_BIN=build/stele python3 tests/integration/test_restart.py -v
Task ports: 31500-31579 (server restarts), 31800-31899 (`stele up`).
"""

import os
import signal
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import stelelib  # noqa: E402
from stelelib import (STELE, SteleTestCase, app_process, pid_alive, sample_app,  # noqa: E402
                      task_answers, wait_until)

APP = "/web"


class RestartTest(SteleTestCase):

    def live_executors(self):
        return self.h.leftover_executors()

    def test_07_server_killed_after_201_keeps_the_app(self):
        """kill -9 of the server right after the 201 of POST /v2/apps; once
        restarted on the same data dir the app is there and gets healthy.
        (Whether the launches were already out when the server died is up
        to timing; test_07c pins the case where they were not.)"""
        server = self.h.server()
        api = server.api
        agent = self.h.agent(server, "agentA", "hostA", "31500-31519", agent_id="agent-a")
        wait_until(lambda: [n for n in api.get("/api/v1/nodes")["nodes"] if n["state"] == "active"], 15, "agent active")
        status, doc = api.call("POST", "/v2/apps", sample_app(APP, 3))
        server.proc.kill9()  # right after the 201
        self.assertEqual(status, 201, doc)
        server.start()
        app = api.v2app(APP)
        self.assertEqual(app["instances"], 3)
        self.assertEqual(app["env"], {"TAG": "v1"})
        self.assertEqual(api.app(APP)["release"], 1)
        try:
            tasks = self.wait_healthy(api, APP, 3, timeout=30)
        except stelelib.WaitTimeout as e:
            self.explain(api, e)
        self.assert_tasks_answer(tasks)
        # No task was started twice: exactly three executors run, one per task.
        time.sleep(2)
        live = sorted(os.path.basename(sb) for sb, _ in self.live_executors())
        self.assertEqual(live, sorted(t["id"] for t in api.live_tasks(APP)),
                         "executors running on the agent vs. the server's live tasks")
        self.assertEqual(len(live), 3)
        self.assertTrue(agent.proc.alive())

    def test_07b_server_restart_keeps_running_tasks(self):
        """The server restarts while tasks run: the agent re-registers with
        them, nothing is relaunched."""
        server = self.h.server()
        api = server.api
        self.h.agent(server, "agentA", "hostA", "31520-31539", agent_id="agent-a")
        wait_until(lambda: [n for n in api.get("/api/v1/nodes")["nodes"] if n["state"] == "active"], 15, "agent active")
        api.call("POST", "/v2/apps", sample_app(APP, 2), expect=201)
        before = self.wait_healthy(api, APP, 2)
        server.proc.kill9()
        server.start()
        after = self.wait_healthy(api, APP, 2, timeout=30)
        self.assertEqual({t["id"]: t["pid"] for t in after}, {t["id"]: t["pid"] for t in before})
        time.sleep(2)
        self.assertEqual(sorted(t["id"] for t in api.live_tasks(APP)), sorted(t["id"] for t in before))

    def explain(self, api, e):
        app = api.app(APP)
        self.fail("%s\n  tasks (server): %s\n  app: release %s, instances %s, deployment %s\n"
                  "  executors running on the agent: %s" %
                  (e, [(t["id"], t["state"], t["healthy"]) for t in api.tasks(APP)], app["release"], app["instances"],
                   (app["deployment"] or {}).get("step"), sorted(os.path.basename(sb) for sb, _ in self.live_executors())))

    def server_agent_via_proxy(self, ports):
        server = self.h.server()
        proxy = self.h.proxy(server.port)
        self.h.agent(server, "agentA", "hostA", ports, agent_id="agent-a", server_url=proxy.url)
        wait_until(lambda: [n for n in server.api.get("/api/v1/nodes")["nodes"] if n["state"] == "active"], 15,
                   "agent active")
        return server, proxy

    def crash_server_with_commands_in_flight(self, server, proxy):
        """kill -9 of the server while what it last sent the agent is still
        in flight (held by the proxy and then lost), then a restart."""
        server.proc.kill9()
        proxy.drop_all()
        proxy.resume()
        server.start()

    def test_07c_launch_in_flight_when_server_dies(self):
        """Deterministic form of test_07: the server committed the launches
        (tasks staged) but the agent never got them before the server died.
        Once back, the server must launch them again (or declare them lost
        and replace them): the app becomes healthy."""
        server, proxy = self.server_agent_via_proxy("31540-31559")
        api = server.api
        proxy.hold()
        api.call("POST", "/v2/apps", sample_app(APP, 3), expect=201)
        wait_until(lambda: len(api.tasks(APP)) == 3, 5, "3 tasks staged")
        time.sleep(0.3)
        self.assertEqual(self.live_executors(), [], "the held launches reached the agent")
        self.crash_server_with_commands_in_flight(server, proxy)
        try:
            tasks = self.wait_healthy(api, APP, 3, timeout=15)
        except stelelib.WaitTimeout as e:
            self.explain(api, e)
        self.assert_tasks_answer(tasks)
        time.sleep(1)
        self.assertEqual(sorted(os.path.basename(sb) for sb, _ in self.live_executors()),
                         sorted(t["id"] for t in api.live_tasks(APP)))

    def test_07d_kill_in_flight_when_server_dies(self):
        """A scale-down accepted (200) whose kills had not reached the agent
        when the server died still happens once it is back."""
        server, proxy = self.server_agent_via_proxy("31560-31579")
        api = server.api
        api.call("POST", "/v2/apps", sample_app(APP, 3), expect=201)
        before = self.wait_healthy(api, APP, 3)
        wait_until(lambda: api.app(APP)["deployment"] is None, 10, "deployment done")
        proxy.hold()
        api.post("/api/v1/apps/web/scale", {"instances": 1})
        wait_until(lambda: len([t for t in api.tasks(APP) if t["state"] == "killing"]) == 2, 5, "2 tasks killing")
        time.sleep(0.3)
        self.assertEqual(len(self.live_executors()), 3, "the held kills reached the agent")
        self.crash_server_with_commands_in_flight(server, proxy)
        self.assertEqual(api.app(APP)["instances"], 1)

        def settled():
            tasks = api.tasks(APP)
            return len(tasks) == 1 and tasks[0]["healthy"] and api.app(APP)["deployment"] is None and \
                len(self.live_executors()) == 1 and tasks
        try:
            kept = wait_until(settled, 15, "one healthy task left, its deployment done, one executor")
        except stelelib.WaitTimeout as e:
            self.explain(api, e)
        for t in before:
            if t["id"] != kept[0]["id"]:
                wait_until(lambda: not pid_alive(t["pid"]), 10, "scaled-away task %s (pid %s) to exit" % (t["id"], t["pid"]))
                self.assertIsNone(task_answers(t, timeout=0.5))

    def test_08_up_restart_reattaches_then_down_stops_all(self):
        spec = self.h.write_json("web.json", sample_app(APP, 2))
        up = self.h.up("31800-31899", apps=[spec])
        api = up.api
        tasks = self.wait_healthy(api, APP, 2, timeout=30)
        self.assert_tasks_answer(tasks)
        pids = {t["id"]: (t["pid"], app_process(t["pid"])) for t in tasks}
        for tid, (pid, app_pid) in pids.items():
            self.assertIsNotNone(app_pid, "no app process under %s" % tid)
        # SIGTERM: the platform stops, the apps keep running, and it says so.
        first = up.proc
        first.signal(signal.SIGTERM)
        rc = first.popen.wait(15)
        self.assertEqual(rc, 0)
        out = first.output()
        self.assertIn("keep running", out)
        self.assertIn("2 app instance(s)", out)
        self.assertFalse(api.ping(), "the API still answers after SIGTERM")
        for tid, (pid, app_pid) in pids.items():
            self.assertTrue(pid_alive(pid) and pid_alive(app_pid), "task %s died with `stele up`" % tid)
        for t in tasks:
            self.assertIn(t["id"], task_answers(t) or "", "task %s stopped serving while Stele is down" % t["id"])
        # Started again: the same tasks, same pids, running and healthy.
        up.start()
        again = self.wait_healthy(api, APP, 2, timeout=30)
        self.assertEqual({t["id"]: t["pid"] for t in again}, {tid: p[0] for tid, p in pids.items()})
        self.assertEqual({t["state"] for t in again}, {"running"})
        time.sleep(2)
        self.assertEqual(sorted(t["id"] for t in api.live_tasks(APP)), sorted(pids))
        for tid, (pid, app_pid) in pids.items():
            self.assertEqual(app_process(pid), app_pid)
        # The initial --app was not deployed again.
        self.assertEqual(api.app(APP)["release"], 1)
        self.assertEqual(len(api.get("/api/v1/apps/web/releases")["releases"]), 1)
        # `stele down` stops the platform and every task.
        r = self.h.run([STELE, "down", "--data-dir", up.data_dir], timeout=60)
        self.assertIn("2 task(s) stopped", r.stdout)
        rc = up.proc.popen.wait(15)
        self.assertEqual(rc, 0)
        for tid, (pid, app_pid) in pids.items():
            wait_until(lambda: not pid_alive(pid) and not pid_alive(app_pid), 5, "task %s gone after `stele down`" % tid)
        wait_until(lambda: not self.live_executors(), 5, "executors gone after `stele down`")
        for t in tasks:
            self.assertIsNone(task_answers(t, timeout=0.5))


if __name__ == "__main__":
    stelelib.main()
