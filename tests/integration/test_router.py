#!/usr/bin/env python3
"""Router: the built-in HTTP reverse proxy of `stele server --router-listen`
routes apps' "routes" (Host + path prefix) to their healthy instances, answers
what it cannot route with a page naming the app and the cause, refuses
oversized heads, logs every request as an LTSV access record in the log
store (tag stele.<app>.access), and `stele routes` / GET /api/v1/routes show
the table. Traffic only to 127.0.0.1.

Run: STELE_BIN=build/stele python3 tests/integration/test_router.py -v
"""
import json
import os
import socket
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stelelib  # noqa: E402
from stelelib import STELE, SteleTestCase, sample_app, wait_until  # noqa: E402

PORTS = "31600-31619"


def raw_request(port, data, timeout=10):
    """Sends raw bytes to the router, returns (status line, headers dict, body) of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        want = int(headers.get("content-length", "0"))
        while len(body) < want:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
        return lines[0], headers, body.decode("utf-8", "replace")


def get(port, host, path="/"):
    return raw_request(port, ("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path, host)).encode())


class RouterTest(SteleTestCase):

    def test_two_apps_on_two_hostnames(self):
        server = self.h.server()
        self.h.agent(server, "agent", "rhost", PORTS)
        rport = server.router_port
        for name in ("web1", "web2"):
            server.api.post("/v2/apps", sample_app("/" + name, instances=2, release_tag=name,
                                                   routes=[{"host": name + ".localhost"}]))
        for name in ("web1", "web2"):
            wait_until(lambda: len(server.api.healthy_tasks("/" + name)) == 2 or None, 40, name + " healthy")

        # Each hostname reaches its own app, spread over both instances.
        def answers(name):
            status, _, body = get(rport, name + ".localhost:%d" % rport)
            return body if status.startswith("HTTP/1.1 200") else None
        for name in ("web1", "web2"):
            seen = set()
            wait_until(lambda: answers(name), 10, name + " through the router")
            for _ in range(6):
                body = answers(name)
                self.assertIsNotNone(body, name)
                task, release, tag = body.split()
                self.assertEqual(tag, name)
                self.assertTrue(task.startswith(name + "-r1."), body)
                seen.add(task)
            self.assertEqual(len(seen), 2, "round-robin over both instances: %s" % seen)

        # What the router cannot route says so.
        status, _, body = get(rport, "nosuch.localhost")
        self.assertTrue(status.startswith("HTTP/1.1 503"), status)
        self.assertIn("no route for host 'nosuch.localhost'", body)
        status, _, _ = raw_request(rport, b"GET / HTTP/1.1\r\nHost: web1.localhost\r\nX-Big: " + b"a" * 70000 +
                                   b"\r\n\r\n")
        self.assertTrue(status.startswith("HTTP/1.1 431"), status)

        # Scaled to 0: no healthy instance -> 503 naming the app.
        server.api.put("/v2/apps/web2", {"instances": 0})
        wait_until(lambda: not server.api.live_tasks("/web2"), 30, "web2 stopped")

        def unavailable():
            status, _, body = get(rport, "web2.localhost")
            return body if status.startswith("HTTP/1.1 503") else None
        body = wait_until(unavailable, 10, "503 for web2")
        self.assertIn("/web2", body)

        # The table as the API and the CLI show it.
        # (the router takes a new table within 200 ms)
        table = wait_until(lambda: (lambda t: t if t["routers"][0]["appliedVersion"] == t["version"] else None)(
            server.api.get("/api/v1/routes")), 5, "the router on the newest table")
        self.assertGreaterEqual(table["version"], 1)
        self.assertEqual(sorted(r["host"] for r in table["routes"]), ["web1.localhost", "web2.localhost"])
        self.assertEqual(len(table["apps"]["/web1"]["instances"]), 2)
        out = self.h.run([STELE, "--api", server.url, "routes"]).stdout
        self.assertRegex(out, r"web1\.localhost\s+/\s+/web1\s+web1-r1\.\d\.\d\s+127\.0\.0\.1:316\d\d\s+healthy")
        self.assertIn("web2.localhost", out)
        self.assertIn("(no instances)", out)

        # Every routed request is an access record of its app.
        def records():
            q = urllib.parse.urlencode({"tag": "stele.web1.access", "limit": 100})
            text = stelelib.get_text(server.url + "/api/v1/logs?" + q)
            rows = [json.loads(line) for line in text.splitlines() if line]
            return rows if len(rows) >= 7 else None
        rows = wait_until(records, 10, "web1's access records")
        fields = dict(kv.split(":", 1) for kv in rows[-1]["record"]["log"].split("\t"))
        self.assertEqual(fields["status"], "200")
        self.assertEqual(fields["method"], "GET")
        self.assertEqual(fields["app"], "/web1")
        self.assertTrue(fields["task"].startswith("web1-r1."))
        self.assertRegex(fields["upstream"], r"^127\.0\.0\.1:316\d\d$")
        self.assertEqual(rows[-1]["record"]["app"], "/web1")

        # ... from which the request metrics of a routed app are counted.
        def counted():
            q = urllib.parse.urlencode({"target": "stele.app.web1.requests.{count,2xx}", "from": "-5min",
                                        "format": "json"})
            doc = json.loads(stelelib.get_text(server.url + "/render?" + q, timeout=10))
            sums = {d["target"].rsplit(".", 1)[1]: sum(v for v, _ in d["datapoints"] if v) for d in doc}
            return sums if sums.get("count", 0) >= len(rows) else None
        sums = wait_until(counted, 40, "web1's routed requests counted")
        self.assertEqual(sums["count"], len(rows))
        ok = [r for r in rows if "\tstatus:200\t" in r["record"]["log"]]
        self.assertGreaterEqual(len(ok), 6)
        self.assertEqual(sums["2xx"], len(ok))

    def test_rolling_upgrade_under_load_fails_no_request(self):
        server = self.h.server()
        self.h.agent(server, "agent", "rhost", PORTS)
        rport = server.router_port
        server.api.post("/v2/apps", sample_app("/roll", instances=2, release_tag="v1",
                                               routes=[{"host": "roll.localhost"}]))
        wait_until(lambda: len(server.api.healthy_tasks("/roll")) == 2 or None, 40, "roll healthy")
        wait_until(lambda: get(rport, "roll.localhost")[0].startswith("HTTP/1.1 200") or None, 10, "routed")

        # Continuous load on one keep-alive-less client loop (bounded: 60 s or 20,000 requests).
        results, stop = [], threading.Event()

        def load():
            deadline = time.time() + 60
            while not stop.is_set() and time.time() < deadline and len(results) < 20000:
                try:
                    status, _, body = get(rport, "roll.localhost")
                    results.append((status.split(" ")[1], body.split()[2] if status.endswith("200 OK") else body))
                except OSError as e:
                    results.append(("error", str(e)))
        t = threading.Thread(target=load)
        t.start()
        try:
            time.sleep(1)
            server.api.put("/v2/apps/roll", sample_app("/roll", instances=2, release_tag="v2",
                                                        routes=[{"host": "roll.localhost"}]))
            wait_until(lambda: not server.api.get("/api/v1/deployments")["deployments"] or None, 60, "upgrade done")
            wait_until(lambda: all(t2["release"] == 2 for t2 in server.api.live_tasks("/roll")) or None, 30,
                       "only r2 left")
            done_at = len(results)
            time.sleep(1)
        finally:
            stop.set()
            t.join()
        failed = [r for r in results if r[0] != "200"]
        tags = [r[1] for r in results if r[0] == "200"]
        print("rolling upgrade under load: %d requests, %d failed" % (len(results), len(failed)))
        self.assertGreater(len(results), 100)
        self.assertEqual(failed, [], "failed requests during the upgrade")
        self.assertEqual(tags[0], "v1")
        self.assertIn("v2", tags)
        after = [r[1] for r in results[done_at:]]
        self.assertGreater(len(after), 10)
        self.assertEqual(set(after), {"v2"}, "only the new release answers once the old instances are gone")


if __name__ == "__main__":
    stelelib.main()
