#!/usr/bin/env python3
"""Router: the built-in HTTP reverse proxy of `stele server --router-listen`
routes apps' "routes" (Host + path prefix) to their healthy instances, answers
what it cannot route with a page naming the app and the cause, refuses
oversized heads, logs every request as an LTSV access record in the log
store (tag stele.<app>.access), and `stele routes` / GET /api/v1/routes show
the table. With --router-tls-listen it terminates TLS with a certificate per
host name (SNI) from <data dir>/certs, and redirects plain requests of
redirectHttps routes there; clients slower than --router-header-timeout are
cut without delaying others. Traffic only to 127.0.0.1.

Run: STELE_BIN=build/stele python3 tests/integration/test_router.py -v
"""
import base64
import contextlib
import hashlib
import json
import os
import select
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stelelib  # noqa: E402
from stelelib import STELE, SteleTestCase, sample_app, wait_until  # noqa: E402

PORTS = "31600-31619"
TLS_PORT = 31620  # the router's TLS listener in test_tls_with_a_test_ca


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


@contextlib.contextmanager
def server_env(**env):
    """Router flags the harness does not pass, given to the server started
    inside the block as the flags' environment variables."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True, timeout=60)


def make_test_ca(workdir, certs_dir, hosts):
    """A test CA (workdir/ca.crt) and, in certs_dir, <host>.crt/.key for each
    host, signed by it. Returns the CA file."""
    os.makedirs(certs_dir, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-days", "2", "-subj", "/CN=Stele Test CA", "-keyout", "ca.key", "-out", "ca.crt",
            cwd=workdir)
    for host in hosts:
        with open(os.path.join(workdir, "ext.cnf"), "w") as f:
            f.write("subjectAltName=DNS:%s\n" % host)
        openssl("req", *ec, "-subj", "/CN=" + host, "-keyout", os.path.join(certs_dir, host + ".key"),
                "-out", "host.csr", cwd=workdir)
        openssl("x509", "-req", "-days", "2", "-in", "host.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-extfile", "ext.cnf", "-out", os.path.join(certs_dir, host + ".crt"), cwd=workdir)
    return os.path.join(workdir, "ca.crt")


def tls_get(port, host, cafile, path="/"):
    """GET over TLS with SNI `host`, verifying the router's certificate for
    `host` against the CA: (certificate CN, ALPN, status line, headers, body)."""
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.set_alpn_protocols(["http/1.1"])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as s:
            cn = dict(kv[0] for kv in s.getpeercert()["subject"])["commonName"]
            s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path, host)).encode())
            data = b""
            while True:
                try:
                    chunk = s.recv(65536)
                except ssl.SSLEOFError:
                    break
                if not chunk:
                    break
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
            return cn, s.selected_alpn_protocol(), lines[0], headers, body.decode()


# An app answering every path with its tag, the path and the
# X-Forwarded-Proto it was given.
PROTO_APP = r"""
import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def do_GET(self):
        body = ('%s %s proto=%s\n' % (os.environ['TAG'], self.path, self.headers.get('X-Forwarded-Proto'))).encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(('127.0.0.1', int(os.environ['PORT0'])), H).serve_forever()
"""


class RequestLoop:
    """Continuous load on one keep-alive-less client loop (bounded: 60 s or
    20,000 requests): results are (status, release tag or error body)."""

    def __init__(self, port, host):
        self.port, self.host = port, host
        self.results, self.stop_event = [], threading.Event()
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self):
        deadline = time.time() + 60
        while not self.stop_event.is_set() and time.time() < deadline and len(self.results) < 20000:
            try:
                status, _, body = get(self.port, self.host)
                self.results.append((status.split(" ")[1], body.split()[2] if status.endswith("200 OK") else body))
            except OSError as e:
                self.results.append(("error", str(e)))

    def stop(self):
        self.stop_event.set()
        self.thread.join()
        return self.results


class RouterTest(SteleTestCase):

    def routed_app(self, server, name, instances, **spec):
        """An agent of `server` and the sample app /<name> on it, routed as
        <name>.localhost; returns the router's port once the app answers there."""
        self.h.agent(server, "agent", "rhost", PORTS)
        server.api.post("/v2/apps", sample_app("/" + name, instances=instances,
                                               routes=[{"host": name + ".localhost"}], **spec))
        wait_until(lambda: len(server.api.healthy_tasks("/" + name)) == instances or None, 40, name + " healthy")
        wait_until(lambda: get(server.router_port, name + ".localhost")[0].startswith("HTTP/1.1 200") or None, 10,
                   "routed")
        return server.router_port

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
        def router_has_both(name):
            # The API's health and the router's table are 200 ms apart: sample
            # once the router runs a table with both instances in its pool.
            t = server.api.get("/api/v1/routes")
            pool = [i for i in t["apps"].get("/" + name, {}).get("instances", []) if i["healthy"]]
            return len(pool) == 2 and all(r["appliedVersion"] == t["version"] for r in t["routers"]) or None
        for name in ("web1", "web2"):
            seen = set()
            wait_until(lambda: router_has_both(name), 10, name + "'s two instances in the router's pool")
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
        rport = self.routed_app(server, "roll", 2, release_tag="v1")

        loop = RequestLoop(rport, "roll.localhost")
        results = loop.results
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
            loop.stop()
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

    def test_agent_router_acknowledges_tables_before_instances_stop(self):
        """`stele agent --router`: the agent runs a router fed by the server over
        its command stream; it acknowledges each table, so a rolling upgrade
        through it drops no request; its access records reach the server."""
        server = self.h.server()
        aport = stelelib.free_port()
        self.h.agent(server, "agent", "rhost", PORTS, router_port=aport)
        server.api.post("/v2/apps", sample_app("/edge", instances=2, release_tag="v1",
                                               routes=[{"host": "edge.localhost"}]))
        wait_until(lambda: len(server.api.healthy_tasks("/edge")) == 2 or None, 40, "edge healthy")
        wait_until(lambda: get(aport, "edge.localhost")[0].startswith("HTTP/1.1 200") or None, 10,
                   "edge routed by the agent's router")

        def routers_in_sync():
            t = server.api.get("/api/v1/routes")
            return len(t["routers"]) == 2 and all(r["appliedVersion"] == t["version"] for r in t["routers"]) and t
        table = wait_until(routers_in_sync, 5, "both routers acknowledging the current table")
        self.assertEqual(sorted(r["node"] for r in table["routers"])[0], "rhost")
        self.assertIn("127.0.0.1:%d" % aport, [r["address"] for r in table["routers"]])

        loop = RequestLoop(aport, "edge.localhost")
        results = loop.results
        try:
            time.sleep(1)
            server.api.put("/v2/apps/edge", sample_app("/edge", instances=2, release_tag="v2",
                                                        routes=[{"host": "edge.localhost"}]))
            wait_until(lambda: not server.api.get("/api/v1/deployments")["deployments"] or None, 60, "upgrade done")
            wait_until(lambda: all(t2["release"] == 2 for t2 in server.api.live_tasks("/edge")) or None, 30,
                       "only r2 left")
            time.sleep(1)
        finally:
            loop.stop()
        failed = [r for r in results if r[0] != "200"]
        print("rolling upgrade through the agent's router: %d requests, %d failed" % (len(results), len(failed)))
        self.assertGreater(len(results), 100)
        self.assertEqual(failed, [], "failed requests during the upgrade")
        self.assertIn("v2", [r[1] for r in results])
        # The agent router's access records, shipped over the forward protocol.
        def agent_records():
            q = urllib.parse.urlencode({"tag": "stele.edge.access", "limit": 1000})
            rows = [json.loads(x) for x in stelelib.get_text(server.url + "/api/v1/logs?" + q).splitlines() if x]
            return [r for r in rows if r["record"].get("node") == "rhost"] or None
        recs = wait_until(agent_records, 20, "access records of the agent's router in the log store")
        self.assertIn("host:edge.localhost", recs[-1]["record"]["log"])

    def test_kill_9_under_load_fails_at_most_the_requests_in_flight(self):
        server = self.h.server()
        rport = self.routed_app(server, "k9", 2)

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

    def test_tls_with_a_test_ca(self):
        # Certificates in <data dir>/certs, the default --router-certs.
        pki = os.path.dirname(self.h.path("pki", "ca.crt"))
        cafile = make_test_ca(pki, os.path.join(self.h.tmp, "server", "certs"), ["tls1.localhost", "tls2.localhost"])
        with server_env(STELE_ROUTER_TLS_LISTEN="127.0.0.1:%d" % TLS_PORT):
            server = self.h.server()
        self.h.agent(server, "agent", "rhost", PORTS)
        rport = server.router_port
        for name, routes in (("tls1", [{"host": "tls1.localhost"}]),
                             ("tls2", [{"host": "tls2.localhost", "redirectHttps": True}])):
            server.api.post("/v2/apps", sample_app("/" + name, instances=1, release_tag=name, routes=routes,
                                                   cmd="exec python3 -u -c \"$APP\"",
                                                   env={"TAG": name, "APP": PROTO_APP}))
        for name in ("tls1", "tls2"):
            wait_until(lambda: len(server.api.healthy_tasks("/" + name)) == 1 or None, 40, name + " healthy")

        # Each name gets its own certificate, which the CA verifies for that
        # name; the app answers and was told the client came over https.
        def answers(name):
            cn, alpn, status, _, body = tls_get(TLS_PORT, name + ".localhost", cafile, "/hello")
            return (cn, alpn, body) if status.startswith("HTTP/1.1 200") else None
        for name in ("tls1", "tls2"):
            cn, alpn, body = wait_until(lambda: answers(name), 10, name + " over TLS")
            self.assertEqual(cn, name + ".localhost")
            self.assertEqual(alpn, "http/1.1")
            self.assertEqual(body, "%s /hello proto=https\n" % name)
        # Plain HTTP still reaches tls1, as http.
        status, _, body = get(rport, "tls1.localhost", "/plain")
        self.assertTrue(status.startswith("HTTP/1.1 200"), status)
        self.assertEqual(body, "tls1 /plain proto=http\n")
        # A name without a certificate (and no default.crt) is refused in the handshake.
        with self.assertRaises(ssl.SSLError):
            tls_get(TLS_PORT, "nocert.localhost", cafile)

        # tls2's route has redirectHttps: plain HTTP gets a redirect to the TLS listener.
        status, headers, _ = get(rport, "tls2.localhost:%d" % rport, "/a?b=1")
        self.assertTrue(status.startswith("HTTP/1.1 301"), status)
        self.assertEqual(headers["location"], "https://tls2.localhost:%d/a?b=1" % TLS_PORT)
        status, headers, _ = raw_request(rport, b"POST /form HTTP/1.1\r\nHost: tls2.localhost\r\n"
                                                b"Content-Length: 0\r\n\r\n")
        self.assertTrue(status.startswith("HTTP/1.1 308"), status)

        # The access records say how each request came.
        def records():
            q = urllib.parse.urlencode({"tag": "stele.tls1.access", "limit": 100})
            rows = [json.loads(line) for line in stelelib.get_text(server.url + "/api/v1/logs?" + q).splitlines()
                    if line]
            schemes = {dict(kv.split(":", 1) for kv in r["record"]["log"].split("\t")).get("scheme") for r in rows}
            return schemes if {"http", "https"} <= schemes else None
        wait_until(records, 10, "tls1's access records over http and https")

    def test_slowloris_clients_are_cut_without_hurting_others(self):
        HEADER_TIMEOUT = 2.0
        with server_env(STELE_ROUTER_HEADER_TIMEOUT=str(HEADER_TIMEOUT)):
            server = self.h.server()
        rport = self.routed_app(server, "calm", 1)

        # SLOW clients each send a request head one byte a second; the router
        # must close each at the header timeout (from its first byte).
        SLOW = 8
        head = b"GET / HTTP/1.1\r\nHost: calm.localhost\r\nX-Padding: " + b"a" * 40 + b"\r\n\r\n"
        cut_after = [None] * SLOW

        def slowloris(i):
            with socket.create_connection(("127.0.0.1", rport), timeout=10) as s:
                start = time.time()
                for byte in head:
                    try:
                        s.sendall(bytes([byte]))
                    except OSError:
                        break
                    readable, _, _ = select.select([s], [], [], 1.0)
                    if readable:
                        try:
                            data = s.recv(4096)
                        except OSError:
                            data = b""
                        if not data:
                            break
                cut_after[i] = time.time() - start
        slow = [threading.Thread(target=slowloris, args=(i,)) for i in range(SLOW)]
        for t in slow:
            t.start()

        # Meanwhile a normal client gets every answer promptly.
        latencies = []
        t0 = time.time()
        while time.time() - t0 < HEADER_TIMEOUT + 2:
            start = time.time()
            status, _, _ = get(rport, "calm.localhost")
            latencies.append(time.time() - start)
            self.assertTrue(status.startswith("HTTP/1.1 200"), status)
        for t in slow:
            t.join()
        print("slowloris: %d slow clients cut after %s s; %d normal requests meanwhile, slowest %.3f s" % (
            SLOW, ", ".join("%.1f" % c for c in cut_after), len(latencies), max(latencies)))
        for c in cut_after:
            self.assertIsNotNone(c)
            self.assertGreaterEqual(c, HEADER_TIMEOUT - 0.5, "cut before the header timeout")
            self.assertLess(c, HEADER_TIMEOUT + 1.5, "not cut at the header timeout (the head takes %d s)" % len(head))
        self.assertGreater(len(latencies), 20)
        self.assertLess(max(latencies), 0.5, "a normal client was slowed down by the slow ones")


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
