"""Metrics (issue 5): Graphite plaintext in (TCP and UDP, bad lines counted and
dropped, the connection kept), the find/expand/render API, Prometheus text at
/metrics; an agent's task and node series under design.md's names within two
collection intervals; a task's OOM kill; log-derived request metrics from an
app's LTSV access lines; and agent points that survive a server kill -9 (they
wait in the agent's spool and are acked only once durable).

Run: STELE_BIN=build/stele python3 tests/integration/test_metrics.py -v
Task ports: 31960-31979.
"""

import json
import os
import socket
import sys
import time
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import stelelib  # noqa: E402
from stelelib import STELE, SteleTestCase, wait_until  # noqa: E402

INTERVAL = 2  # --metrics-interval of the agents here


def render(url, target, since="-5min", fmt="json", **params):
    q = {"target": target, "from": since, "format": fmt}
    q.update(params)
    return stelelib.get_text(url + "/render?" + urllib.parse.urlencode(q, doseq=True), timeout=10)


def series(url, target, since="-5min"):
    """{name: [values without None]} of a json render."""
    return {s["target"]: [v for v, _ in s["datapoints"] if v is not None]
            for s in json.loads(render(url, target, since))}


def http(url, data=None, headers=None):
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def prometheus(url):
    out = {}
    for line in stelelib.get_text(url + "/metrics").splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


class GraphiteApiTest(SteleTestCase):

    def test_plaintext_in_find_render_prometheus(self):
        server = self.h.server()
        url = server.url
        now = int(time.time()) // 10 * 10 - 60
        sock = socket.create_connection(("127.0.0.1", server.graphite_port))
        lines = []
        for i in range(6):
            t = now + 10 * i
            lines.append("it.web1.requests %d %d" % (i, t))
            lines.append("it.web2.requests %d %d" % (10 * i, t))
        sock.sendall(("\n".join(lines) + "\n").encode())
        # Bad lines are dropped, counted and logged; the connection stays open.
        sock.sendall(b"only two\nit.web1.bad notanumber 1\nit.nan.x nan %d\n" % now)
        time.sleep(0.3)
        sock.sendall(b"it.after.bad 7 %d\n" % now)
        # UDP: one datagram, two lines, the last without a newline.
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.sendto(b"it.udp.a 1 %d\nit.udp.b 2 -1" % now, ("127.0.0.1", server.graphite_port))
        u.close()
        wait_until(lambda: series(url, "it.after.bad") .get("it.after.bad") == [7.0], 10,
                   "the point sent after the bad lines")
        sock.close()

        found = json.loads(stelelib.get_text(url + "/metrics/find?query=it.*"))
        self.assertEqual(sorted(n["text"] for n in found), ["after", "udp", "web1", "web2"])
        names = {n["text"]: n for n in found}
        self.assertIn("web1", names)
        self.assertEqual(names["web1"]["leaf"], 0)
        self.assertNotIn("nan", names, "a NaN line must be dropped, not create a series")
        leaves = json.loads(stelelib.get_text(url + "/metrics/find?query=it.web1.*"))
        self.assertEqual([(n["id"], n["leaf"]) for n in leaves], [("it.web1.requests", 1)])
        self.assertEqual(json.loads(stelelib.get_text(url + "/metrics/expand?query=it.udp.*"))["results"],
                         ["it.udp.a", "it.udp.b"])

        got = series(url, "sumSeries(it.web*.requests)")
        self.assertEqual(got["sumSeries(it.web*.requests)"], [11.0 * i for i in range(6)])
        got = series(url, "aliasByNode(it.{web1,web2}.requests,1)")
        self.assertEqual(sorted(got), ["web1", "web2"])
        # Grafana's way: a form POST, aliasSub around the target, maxDataPoints.
        body = urllib.parse.urlencode({"target": "aliasSub(it.web2.requests, 'it\\.(\\w+)\\..*', '\\1')",
                                       "from": "-5min", "until": "now", "format": "json",
                                       "maxDataPoints": "3"}).encode()
        status, text = http(url + "/render", body, {"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(status, 200, text)
        doc = json.loads(text)
        self.assertEqual([s["target"] for s in doc], ["web2"])
        self.assertLessEqual(len(doc[0]["datapoints"]), 3)
        raw = render(url, "it.web1.requests", fmt="raw")
        self.assertTrue(raw.startswith("it.web1.requests,"), raw)
        csv = render(url, "it.web1.requests", fmt="csv")
        self.assertIn("it.web1.requests,", csv)

        status, text = http(url + "/render?" + urllib.parse.urlencode({"target": "sumSeries(it.*", "format": "json"}))
        self.assertEqual(status, 400)
        self.assertIn("position", text)
        status, text = http(url + "/render?" + urllib.parse.urlencode({"target": "nosuch(it.*)", "format": "json"}))
        self.assertEqual(status, 400)
        self.assertIn("nosuch", text)

        # Durable (the WAL fdatasynced) within the store's commit interval.
        prom = wait_until(lambda: (lambda p: p if p["stele_metrics_points_durable_total"] >= 15 else None)(
            prometheus(url)), 5, "15 points durable")
        self.assertGreaterEqual(prom['stele_graphite_lines_total{status="field_count"}'], 1)
        self.assertGreaterEqual(prom['stele_graphite_lines_total{status="bad_value"}'], 1)
        self.assertGreaterEqual(prom['stele_graphite_lines_total{status="nan"}'], 1)
        self.assertIn("bad line", server.proc.output())


# An app that prints 100 LTSV access lines in one burst, early in a 10 s
# window: 90 answered 200 in 1..90 ms, 10 answered 503 in 1 s; and whose
# child process is OOM-killed (the parent stays, so the cgroup does).
ACCESS = ("import sys,time,subprocess\n"
          "while not (1 <= time.time() % 10 < 4): time.sleep(0.1)\n"
          "out=[]\n"
          "for i in range(90): out.append('time:t\\tstatus:200\\treqtime:%.3f\\n' % ((i+1)/1000))\n"
          "for i in range(10): out.append('time:t\\tstatus:503\\treqtime:1.000\\n')\n"
          "sys.stdout.write(''.join(out)); sys.stdout.flush()\n"
          "subprocess.call([sys.executable, '-c', 'x=bytearray(400*1024*1024); x[::4096]=b\"1\"*len(x[::4096])'])\n"
          "time.sleep(100000)\n")


class AgentMetricsTest(SteleTestCase):

    def start(self, **extra):
        server = self.h.server(**extra)
        agent = self.h.agent(server, "agent", "mhost", "31960-31979", agent_id="agent-metrics",
                             metrics_interval=INTERVAL)
        wait_until(lambda: [n for n in server.api.get("/api/v1/nodes")["nodes"] if n["state"] == "active"], 15,
                   "agent active")
        return server, agent

    def test_task_series_oom_and_request_metrics(self):
        server, agent = self.start()
        url = server.url
        server.api.post("/v2/apps", {"id": "/acc", "cmd": "exec python3 -u -c \"$ACCESS\"",
                                     "env": {"ACCESS": ACCESS}, "instances": 1, "cpus": 0.2, "mem": 64,
                                     "accessLog": {"format": "ltsv", "status": "status", "latency": "reqtime"}})
        wait_until(lambda: server.api.live_tasks("/acc"), 20, "the task running")
        started = time.time()
        mem = wait_until(lambda: series(url, "stele.task.mhost.acc-r1.0.memory.usage").get(
            "stele.task.mhost.acc-r1.0.memory.usage"), 20, "the task's memory series")
        self.assertLess(time.time() - started, 2 * INTERVAL + 3, "memory series later than two intervals")
        self.assertGreater(mem[-1], 1e6)
        cpu = wait_until(lambda: series(url, "stele.task.mhost.acc-*.*.cpu.usage").get(
            "stele.task.mhost.acc-r1.0.cpu.usage"), 10, "the task's cpu series")
        self.assertGreater(max(cpu), 0)
        self.assertTrue(series(url, "stele.node.mhost.memory.total"), "node memory series")
        self.assertTrue(series(url, "stele.node.mhost.load.1"), "node load series")
        oom = wait_until(lambda: [v for v in series(url, "stele.task.mhost.acc-r1.0.memory.oom_kills").get(
            "stele.task.mhost.acc-r1.0.memory.oom_kills", []) if v >= 1], 30, "the OOM kill counted")
        self.assertGreaterEqual(oom[-1], 1)

        def windows():
            got = series(url, "stele.app.acc.requests.{count,5xx}")
            got.update(series(url, "stele.app.acc.requests.latency.p99"))
            counts = got.get("stele.app.acc.requests.count", [])
            return got if sum(counts) >= 100 else None
        got = wait_until(windows, 40, "100 requests counted")
        self.assertEqual(sum(got["stele.app.acc.requests.count"]), 100)
        self.assertEqual(sum(got["stele.app.acc.requests.5xx"]), 10)
        self.assertEqual(max(got["stele.app.acc.requests.latency.p99"]), 1000.0)

        # The CLI: one row per series with its figures and a sparkline...
        out = self.h.run([STELE, "--api", url, "metrics", "stele.app.acc.requests.{count,5xx}", "--since", "5m"]).stdout
        lines = out.splitlines()
        self.assertRegex(lines[0], r"UTC, step 10s, 3[01] values per series")
        self.assertEqual(lines[2].split()[:5], ["SERIES", "LAST", "MIN", "AVG", "MAX"])
        row = [l for l in lines if l.startswith("stele.app.acc.requests.5xx ")]
        self.assertEqual(len(row), 1, out)
        self.assertEqual(row[0].split()[4], "10", out)  # MAX of the windows
        self.assertRegex(row[0], "[\u2581-\u2588]", out)  # the sparkline (unit tests check its shape)
        doc = json.loads(self.h.run([STELE, "--api", url, "metrics", "stele.app.acc.requests.5xx", "--json"]).stdout)
        self.assertEqual(sum(v for v, _ in doc[0]["datapoints"] if v), 10)
        bad = self.h.run([STELE, "--api", url, "metrics", "sumSeries(stele.*"], check=False)
        self.assertEqual(bad.returncode, 1)
        self.assertIn("position", bad.stderr)

        # ... and top: the instance with its memory against the 64 MB limit.
        top = json.loads(self.h.run([STELE, "--api", url, "top", "-n", "1", "--json"]).stdout)
        rows = [t for t in top["tasks"] if t["id"] == "acc-r1.0.1"]
        self.assertEqual(len(rows), 1, top)
        self.assertGreater(rows[0]["memBytes"] or 0, 1e6, top)
        self.assertEqual(rows[0]["memLimitBytes"], 64 << 20)
        self.assertIsNotNone(rows[0]["cpuPercent"], top)
        self.assertEqual([n["host"] for n in top["nodes"]], ["mhost"])
        self.assertGreater(top["nodes"][0]["memTotalBytes"], 0)
        screen = self.h.run([STELE, "--api", url, "top", "-n", "1"]).stdout
        self.assertRegex(screen, r"1 running task on 1 node")
        self.assertRegex(screen, r"acc-r1\.0\.1\s+/acc\s+mhost\s+\d+\.\d\s+\S+\s+\S+\s+64M\s+\d+\.\d")

    def test_agent_points_survive_a_server_kill(self):
        schemas = self.h.path("schemas.conf")
        with open(schemas, "w") as f:
            f.write("[all]\npattern = .*\nretentions = 1s:1h,1m:1d\n")
        server, agent = self.start(metrics_schemas=schemas)
        url = server.url
        target = "stele.node.mhost.load.1"
        wait_until(lambda: series(url, target).get(target), 20, "node series")
        server.proc.kill9()
        down_from = time.time()
        time.sleep(4 * INTERVAL)
        down_until = time.time()
        server.start()

        def during():
            doc = json.loads(render(url, target, since=str(int(down_from) - 1)))
            pts = [t for v, t in doc[0]["datapoints"] if v is not None and down_from <= t <= down_until] if doc else []
            return pts if len(pts) >= 3 else None
        pts = wait_until(during, 30, "points collected while the server was down")
        self.assertGreaterEqual(len(pts), 3)


if __name__ == "__main__":
    stelelib.main()
