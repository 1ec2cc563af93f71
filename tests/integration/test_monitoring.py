#!/usr/bin/env python3
"""Monitoring: Nagios-plugin checks defined through the API run on the agents
their subscriptions select (or, with "proxy", once per instance of an app),
with Debian's real monitoring-plugins; check states, events, incidents and
resolutions to an http handler, silences, ttl, plugin timeouts, perfdata as
metrics, exported-port probes that never kill, and agent keepalives.
Traffic only to 127.0.0.1.

Run: STELE_BIN=build/stele python3 tests/integration/test_monitoring.py -v
"""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stelelib  # noqa: E402
from stelelib import STELE, SteleTestCase, sample_app, wait_until  # noqa: E402

PORTS = "32480-32499"
PLUGINS = "/usr/lib/nagios/plugins"


class HandlerSink:
    """An http handler's receiving end: every POSTed event, in order."""

    def __init__(self):
        self.events = []
        sink = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(n)
                sink.events.append(json.loads(body))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def of(self, check):
        return [e for e in self.events if e["check"]["name"] == check]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Listener:
    """A TCP port the test opens and closes (a service that goes away)."""

    def __init__(self):
        self.port = stelelib.free_port()
        self.sock = None

    def open(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(16)
        self.sock = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def _accept(self, s):
        while True:
            try:
                c, _ = s.accept()
                c.close()
            except OSError:
                return

    def close(self):
        if self.sock:
            self.sock.close()
            self.sock = None


def state(api, entity, check):
    states = api.get("/api/v1/checks/status?check=%s&entity=%s" % (check, entity))["states"]
    return states[0] if states else None


def status_of(api, entity, check):
    s = state(api, entity, check)
    return s["check"]["status"] if s else None


class MonitoringTest(SteleTestCase):
    def setUp(self):
        super().setUp()
        if not os.path.exists(os.path.join(PLUGINS, "check_tcp")):
            self.skipTest("Debian's monitoring-plugins-basic is not installed (scripts/bootstrap installs it)")
        self.sink = HandlerSink()
        self.addCleanup(self.sink.close)
        self.server = self.h.server(probe_interval=1)
        self.api = self.server.api
        self.agent = self.h.agent(self.server, "agent1", "monhost", PORTS, subscriptions="base,web")
        wait_until(lambda: len(self.api.get("/api/v1/nodes")["nodes"]) == 1, 15, "the agent to register")
        self.api.post("/api/v1/handlers", {"name": "hook", "type": "http",
                                           "url": "http://127.0.0.1:%d/alerts" % self.sink.port})

    def cli(self, *args, check=True):
        return self.h.run([STELE, *args, "--api", self.server.url], check=check)

    def test_plugins_states_handlers_silences_perfdata(self):
        api = self.api
        svc, quiet = Listener(), Listener()
        svc.open()
        self.addCleanup(svc.close)
        # A silenced check's incidents call no handler (the silence comes first).
        api.post("/api/v1/silences", {"subscription": "*", "check": "quiet", "reason": "maintenance"})
        checks = [
            {"name": "load", "command": "check_load -w 1000,1000,1000 -c 2000,2000,2000", "interval": 2,
             "subscriptions": ["base"]},
            {"name": "disk", "command": "check_disk -w 1%% -c 0%% -p /", "interval": 2, "subscriptions": ["*"]},
            {"name": "svc", "command": "check_tcp -H 127.0.0.1 -p %d -t 2" % svc.port, "interval": 1,
             "timeout": 5, "subscriptions": ["web"], "handlers": ["hook"]},
            {"name": "quiet", "command": "check_tcp -H 127.0.0.1 -p %d -t 2" % quiet.port, "interval": 1,
             "timeout": 5, "subscriptions": ["web"], "handlers": ["hook"]},
            {"name": "hang", "command": "sleep 30", "interval": 3, "timeout": 1, "subscriptions": ["base"]},
            {"name": "other", "command": "check_dummy 0 never", "interval": 1, "subscriptions": ["db"]},
        ]
        for c in checks:
            c["command"] = c["command"].replace("%%", "%")
            api.post("/api/v1/checks", c)
        # A bad definition names its fields; nothing of it is kept.
        _, err = api.call("POST", "/api/v1/checks", {"name": "bad", "command": "true", "interval": 0,
                                                     "subscriptions": ["*"], "occurences": 2}, expect=422)
        paths = {d["path"] for d in err["details"]}
        self.assertIn("/interval", paths)
        self.assertIn("/occurences", paths)
        self.assertEqual(api.call("GET", "/api/v1/checks/bad", expect=404)[1]["message"], "check 'bad' not found")

        wait_until(lambda: status_of(api, "monhost", "load") == 0, 20, "check_load OK on the agent")
        wait_until(lambda: status_of(api, "monhost", "disk") == 0, 20, "check_disk OK on the agent")
        wait_until(lambda: status_of(api, "monhost", "svc") == 0, 20, "check_tcp OK against the open port")
        load = state(api, "monhost", "load")
        self.assertIn("load1", [p["label"] for p in load["check"]["perfdata"]])
        self.assertEqual(load["state"], "passing")
        # Only subscribed agents run a check.
        self.assertIsNone(state(api, "monhost", "other"))

        # A hanging plugin is killed at its timeout: UNKNOWN, Nagios' wording.
        wait_until(lambda: status_of(api, "monhost", "hang") == 3, 20, "the hanging plugin to be UNKNOWN")
        self.assertIn("timed out after 1", state(api, "monhost", "hang")["check"]["output"])
        # ...and its process group is gone (no sleep 30 left behind by the task user).
        time.sleep(1.5)
        uid = stelelib.task_user_uid()
        left = subprocess.run(["pgrep", "-u", str(uid), "-f", "^sleep 30$"], capture_output=True, text=True).stdout.split()
        self.assertEqual(left, [], "sleep 30 still running after its check timed out")

        # The port goes away: CRITICAL, an incident to the handler; back: resolution.
        svc.close()
        wait_until(lambda: status_of(api, "monhost", "svc") == 2, 15, "svc CRITICAL once its port is closed")
        wait_until(lambda: any(e["action"] == "create" for e in self.sink.of("svc")), 15, "the incident at the handler")
        svc.open()
        wait_until(lambda: status_of(api, "monhost", "svc") == 0, 15, "svc OK again")
        wait_until(lambda: any(e["action"] == "resolve" for e in self.sink.of("svc")), 15, "the resolution at the handler")
        got = self.sink.of("svc")
        self.assertEqual([e["action"] for e in got], ["create", "resolve"], got)
        self.assertEqual(got[0]["check"]["status"], 2)
        self.assertEqual(got[0]["entity"]["name"], "monhost")
        # Both changes are events on the one stream.
        evs = api.get("/api/v1/events?type=check_state&limit=1000")["events"]
        svc_changes = [e["change"] for e in evs if e["check"] == "svc"]
        self.assertIn("incident", svc_changes)
        self.assertIn("resolution", svc_changes)

        # The silenced check is CRITICAL, recorded as silenced, and no handler saw it.
        wait_until(lambda: status_of(api, "monhost", "quiet") == 2, 15, "quiet CRITICAL")
        self.assertTrue(state(api, "monhost", "quiet")["silenced"])
        self.assertEqual(self.sink.of("quiet"), [])

        # Perfdata lands in the metrics store.
        def load1_points():
            _, series = stelelib.http("GET", self.server.url +
                                      "/render?target=stele.check.monhost.load.load1&from=-5min&format=json")
            return series and any(v is not None for v, _ in series[0]["datapoints"])
        wait_until(load1_points, 30, "stele.check.monhost.load.load1 points")

        # CLI: the failing states and a run-now.
        out = self.cli("checks", "--failing").stdout
        self.assertIn("quiet", out)
        self.assertIn("CRITICAL", out)
        self.assertIn("failing, silenced", out)
        self.assertNotIn("load ", out.replace("load1", ""))
        out = self.cli("check", "run", "svc").stdout
        self.assertRegex(out, r"monhost\s+svc\s+OK")
        self.assertIn("TCP OK", out)
        out = self.cli("check", "list").stdout
        self.assertRegex(out, r"hang\s+base\s+3s\s+1s")
        out = self.cli("silence", "list").stdout
        self.assertIn("*:quiet", out)
        self.assertIn("maintenance", out)
        r = self.cli("check", "run", "nosuch", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("check 'nosuch' not found", r.stderr)

    def test_proxy_checks_probes_ttl_and_keepalive(self):
        api = self.api
        api.post("/v2/apps", sample_app("/mon", instances=1))
        # An instance whose port nobody listens on: its probe fails, it is never killed.
        api.post("/v2/apps", {"id": "/deaf", "cmd": "exec sleep 1000", "cpus": 0.05, "mem": 16, "instances": 1,
                              "portDefinitions": [{"port": 0}]})
        wait_until(lambda: len(api.healthy_tasks("/mon")) == 1, 30, "/mon healthy")
        wait_until(lambda: len(api.live_tasks("/deaf")) == 1 and api.live_tasks("/deaf")[0]["state"] == "running",
                   30, "/deaf running")
        deaf = api.live_tasks("/deaf")[0]
        mon = api.healthy_tasks("/mon")[0]
        mon_entity = "mon-r%d-%d" % (mon["release"], mon["seq"]) if "seq" in mon else None
        for c in [{"name": "http", "command": "check_http -H {{host}} -p {{port0}} -u /health -t 3",
                   "interval": 1, "proxy": "/mon"},
                  {"name": "tcp", "command": "check_tcp -H {{host}} -p {{port0}} -t 3", "interval": 1,
                   "proxy": "/mon"},
                  {"name": "beat", "command": "check_dummy 0 alive", "interval": 1, "ttl": 3,
                   "subscriptions": ["base"]}]:
            api.post("/api/v1/checks", c)

        def task_states(check):
            return [s for s in api.get("/api/v1/checks/status?check=" + check)["states"]]
        wait_until(lambda: [s["check"]["status"] for s in task_states("http")] == [0], 20, "check_http OK on /mon")
        wait_until(lambda: [s["check"]["status"] for s in task_states("tcp")] == [0], 20, "check_tcp OK on /mon")
        entity = task_states("http")[0]["entity"]
        self.assertRegex(entity, r"^mon-r1-0$")
        if mon_entity:
            self.assertEqual(entity, mon_entity)
        self.assertIn("HTTP OK", task_states("http")[0]["check"]["output"])

        # Exported-port probes: HTTP for /mon (it has an HTTP health check), TCP for /deaf.
        wait_until(lambda: status_of(api, entity, "probe") == 0, 15, "/mon's probe OK")
        self.assertIn("HTTP /health OK", state(api, entity, "probe")["check"]["output"])
        wait_until(lambda: status_of(api, "deaf-r1-0", "probe") == 2, 15, "/deaf's probe CRITICAL")
        time.sleep(4)  # several failing probes later...
        still = api.live_tasks("/deaf")
        self.assertEqual([t["id"] for t in still], [deaf["id"]], "a failing probe must never kill or replace the task")
        self.assertEqual(still[0]["state"], "running")
        self.assertGreaterEqual(state(api, "deaf-r1-0", "probe")["occurrences"], 3)

        # Keepalive: OK while heartbeats come; the agent stopped (SIGSTOP) -> WARNING at half
        # the agent timeout (4 s), CRITICAL at it. The ttl check fails too (no results).
        wait_until(lambda: status_of(api, "monhost", "keepalive") == 0, 10, "keepalive OK")
        wait_until(lambda: status_of(api, "monhost", "beat") == 0, 10, "beat OK")
        stopped_at = time.time()
        self.agent.proc.signal(signal.SIGSTOP)
        try:
            wait_until(lambda: status_of(api, "monhost", "keepalive") == 1, 10, "keepalive WARNING")
            warn_after = time.time() - stopped_at
            wait_until(lambda: status_of(api, "monhost", "keepalive") == 2, 10, "keepalive CRITICAL")
            crit_after = time.time() - stopped_at
            wait_until(lambda: status_of(api, "monhost", "beat") == 1, 10, "the ttl of beat to expire (WARNING)")
            self.assertIn("Last check execution was", state(api, "monhost", "beat")["check"]["output"])
        finally:
            self.agent.proc.signal(signal.SIGCONT)
        stelelib.log("keepalive WARNING after %.1f s, CRITICAL after %.1f s (agent timeout 4 s)" % (warn_after, crit_after))
        self.assertLess(warn_after, crit_after)
        self.assertGreaterEqual(crit_after, 3.0)
        evs = [e for e in api.get("/api/v1/events?type=check_state&limit=1000")["events"] if e["check"] == "keepalive"]
        statuses = [e["status"] for e in evs]
        self.assertTrue(any(statuses[i:i + 2] == [1, 2] for i in range(len(statuses))),
                        "keepalive events should go WARNING then CRITICAL: %s" % statuses)
        wait_until(lambda: status_of(api, "monhost", "keepalive") == 0, 20, "keepalive OK after the agent is back")


if __name__ == "__main__":
    unittest.main()
