#!/usr/bin/env python3
"""Router: the built-in HTTP reverse proxy of `stele server --router-listen`
routes apps' "routes" (Host + path prefix) to their healthy instances, answers
what it cannot route with a page naming the app and the cause, refuses
oversized heads, logs every request as an LTSV access record in the log
store (tag stele.<app>.access), and `stele routes` / GET /api/v1/routes show
the table. Traffic only to 127.0.0.1.

Run: STELE_BIN=build/stele python3 tests/integration/test_router.py -v
"""
import base64
import hashlib
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stelelib  # noqa: E402
from stelelib import STELE, SteleTestCase, sample_app, wait_until  # noqa: E402

PORTS = "31600-31619"


def read_head(s):
    """Bytes from s up to and including the end of a response head (and what followed in the same reads)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    return buf


def raw_request(port, data, timeout=10):
    """Sends raw bytes to the router, returns (status line, headers dict, body) of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        head, _, body = read_head(s).partition(b"\r\n\r\n")
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

    def test_kill_9_under_load_fails_at_most_the_requests_in_flight(self):
        server = self.h.server()
        self.h.agent(server, "agent", "rhost", PORTS)
        rport = server.router_port
        server.api.post("/v2/apps", sample_app("/k9", instances=2, routes=[{"host": "k9.localhost"}]))
        wait_until(lambda: len(server.api.healthy_tasks("/k9")) == 2 or None, 40, "k9 healthy")
        wait_until(lambda: get(rport, "k9.localhost")[0].startswith("HTTP/1.1 200") or None, 10, "routed")

        # CLIENTS sequential clients: at most CLIENTS requests are in flight at any moment.
        CLIENTS = 4
        results, stop = [], threading.Event()

        def load():
            deadline = time.time() + 30
            while not stop.is_set() and time.time() < deadline and len(results) < 20000:
                try:
                    results.append(get(rport, "k9.localhost")[0].split(" ")[1])
                except OSError as e:
                    results.append("error " + str(e))
        threads = [threading.Thread(target=load) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        try:
            time.sleep(1)
            victim = server.api.healthy_tasks("/k9")[0]
            os.kill(victim["pid"], signal.SIGKILL)
            wait_until(lambda: victim["id"] not in [t["id"] for t in server.api.live_tasks("/k9")] or None, 20,
                       "the killed instance noticed")
            wait_until(lambda: len(server.api.healthy_tasks("/k9")) == 2 or None, 40, "replaced")
            time.sleep(1)
        finally:
            stop.set()
            for t in threads:
                t.join()
        failed = [r for r in results if r != "200"]
        print("kill -9 under load: %d requests by %d clients, %d failed %s" % (
            len(results), CLIENTS, len(failed), failed[:4]))
        self.assertGreater(len(results), 100)
        self.assertLessEqual(len(failed), CLIENTS, "more failures than requests in flight at the kill")

    def test_websocket_echo_through_the_router(self):
        server = self.h.server()
        self.h.agent(server, "agent", "rhost", PORTS)
        rport = server.router_port
        server.api.post("/v2/apps", {"id": "/ws", "cmd": "exec python3 -u -c \"$WS\"", "env": {"WS": WS_APP},
                                     "cpus": 0.1, "mem": 64, "instances": 1,
                                     "portDefinitions": [{"port": 0, "name": "ws"}],
                                     "routes": [{"host": "ws.localhost"}]})
        wait_until(lambda: server.api.live_tasks("/ws") and
                   server.api.live_tasks("/ws")[0]["state"] == "running" or None, 30, "ws running")
        key = base64.b64encode(os.urandom(16)).decode()

        def handshake():
            s = socket.create_connection(("127.0.0.1", rport), timeout=10)
            s.sendall(("GET /chat HTTP/1.1\r\nHost: ws.localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % key).encode())
            head = read_head(s)
            if not head.startswith(b"HTTP/1.1 101"):
                s.close()
                return None
            return s, head
        s, head = wait_until(handshake, 10, "the 101 through the router")
        accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        self.assertIn(b"Sec-WebSocket-Accept: " + accept, head)
        with s:
            for text in ("hello", "x" * 1000):
                payload = text.encode()
                mask = os.urandom(4)
                n = len(payload)
                frame = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big"))
                s.sendall(frame + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
                got = b""
                want = 2 + (2 if n >= 126 else 0) + n
                while len(got) < want:
                    chunk = s.recv(65536)
                    self.assertTrue(chunk, "connection closed mid-frame")
                    got += chunk
                self.assertEqual(got[0], 0x81)
                self.assertEqual(got[(4 if n >= 126 else 2):].decode(), text)


# A minimal WebSocket echo server (RFC 6455: handshake, one unfragmented text
# frame at a time, echoed back unmasked).
WS_APP = r"""
import base64, hashlib, os, socket, threading
def serve(c):
    data = b''
    while b'\r\n\r\n' not in data:
        data += c.recv(4096)
    key = [l.split(b':', 1)[1].strip() for l in data.split(b'\r\n') if l.lower().startswith(b'sec-websocket-key:')][0]
    acc = base64.b64encode(hashlib.sha1(key + b'258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest())
    c.sendall(b'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ' + acc + b'\r\n\r\n')
    buf = b''
    def need(n):
        nonlocal buf
        while len(buf) < n:
            chunk = c.recv(65536)
            if not chunk:
                raise EOFError
            buf += chunk
        out, buf = buf[:n], buf[n:]
        return out
    try:
        while True:
            b0, b1 = need(2)
            n = b1 & 127
            if n == 126:
                n = int.from_bytes(need(2), 'big')
            mask = need(4)
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(need(n)))
            head = bytes([b0]) + (bytes([n]) if n < 126 else bytes([126]) + n.to_bytes(2, 'big'))
            c.sendall(head + payload)
    except EOFError:
        c.close()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', int(os.environ['PORT0'])))
s.listen(16)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""


if __name__ == "__main__":
    stelelib.main()
