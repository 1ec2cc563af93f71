"""TLS across hosts ("Cluster and HA" point 6, part): `stele certs` makes a
cluster CA and a node certificate for 127.0.0.1; a server serves its API only
over HTTPS (--tls-cert/--tls-key) and its forward input over TLS
(--forward-tls); an agent joins over https:// verifying with --tls-ca, runs
the sample app and ships its output over TLS; the CLI lists apps with --ca
and refuses without it; plain HTTP to the TLS port gets no HTTP answer;
npm fluent-logger with `tls: true` sends a record that is then stored.

Run: STELE_BIN=build/stele python3 tests/integration/test_tls.py -v
Ports: 32620-32639 (API 32620, forward 32621, graphite 32622, router 32623,
task ports 32630-32639).
"""

import json
import os
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import unittest
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import stelelib  # noqa: E402
from stelelib import HERE, STELE, SteleTestCase, wait_until  # noqa: E402

API_PORT, FORWARD_PORT, GRAPHITE_PORT, ROUTER_PORT = 32620, 32621, 32622, 32623
TASK_PORTS = "32630-32639"
API = "https://127.0.0.1:%d" % API_PORT
NODE_MODULES = os.path.join(HERE, "node_modules")

# fluent-logger (v3) over TLS, verifying the server with the cluster CA; one
# acked record.
FLUENT_TLS_JS = r"""
const fs = require('fs');
const logger = require('fluent-logger');
const [port, ca, label] = process.argv.slice(2);
const sender = logger.createFluentSender('tls', {
  host: '127.0.0.1', port: Number(port), timeout: 5.0, reconnectInterval: 500,
  requireAckResponse: true, ackResponseTimeout: 5000,
  tls: true, tlsOptions: {ca: fs.readFileSync(ca)}});
sender.on('error', (e) => { console.error('sender error:', e && e.message); process.exit(1); });
sender.emit(label, {log: 'over tls ' + label}, (err) => {
  if (err) { console.error('emit failed:', err.message || err); process.exit(1); }
  sender.end(null, null, () => process.exit(0));
});
setTimeout(() => { console.error('timed out'); process.exit(2); }, 20000);
"""


class TlsTest(SteleTestCase):

    def setUp(self):
        super().setUp()
        os.environ.pop("STELE_CA", None)  # the CLI checks below choose their trust explicitly
        self.certs = self.h.path("certs", "x")[:-2]

    def stele(self, *args, check=True, env=None):
        r = subprocess.run([STELE] + list(args), capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL, env=env)
        with open(os.path.join(self.h.logdir, "commands.log"), "a") as f:
            f.write("$ stele %s\n[exit %d]\n%s%s\n" % (" ".join(args), r.returncode, r.stdout, r.stderr))
        if check and r.returncode != 0:
            raise AssertionError("stele %s exited %d:\n%s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
        return r

    def make_certs(self):
        init = json.loads(self.stele("certs", "init", "--dir", self.certs, "--json").stdout)
        self.assertEqual(init["cert"], os.path.join(self.certs, "ca.crt"))
        self.assertEqual(stat.S_IMODE(os.stat(init["key"]).st_mode), 0o600)
        node = json.loads(self.stele("certs", "node", "server", "--dir", self.certs, "--ip", "127.0.0.1",
                                     "--dns", "localhost", "--json").stdout)
        self.assertEqual(stat.S_IMODE(os.stat(node["key"]).st_mode), 0o600)
        # A second init refuses to replace the CA; a node without a CA says how to make one.
        again = self.stele("certs", "init", "--dir", self.certs, check=False)
        self.assertNotEqual(again.returncode, 0)
        self.assertIn("--force", again.stderr)
        empty = self.h.path("empty", "x")[:-2]
        none = self.stele("certs", "node", "n", "--dir", empty, "--ip", "127.0.0.1", check=False)
        self.assertNotEqual(none.returncode, 0)
        self.assertIn("no CA in %s: run stele certs init" % empty, none.stderr)
        return init["cert"], node["cert"], node["key"]

    def start_server(self, ca, crt, key):
        argv = [STELE, "server", "--data-dir", self.h.path("server", "x")[:-2],
                "--listen", "127.0.0.1:%d" % API_PORT,
                "--agent-timeout", str(stelelib.AGENT_TIMEOUT), "--deploy-timeout", str(stelelib.DEPLOY_TIMEOUT),
                "--forward-listen", "127.0.0.1:%d" % FORWARD_PORT,
                "--graphite-listen", "127.0.0.1:%d" % GRAPHITE_PORT,
                "--router-listen", "127.0.0.1:%d" % ROUTER_PORT,
                "--tls-cert", crt, "--tls-key", key, "--tls-ca", ca, "--forward-tls"]
        proc = self.h.spawn("server", argv)
        api = stelelib.Api(API)

        def up():
            if not proc.alive():
                raise AssertionError("server exited:\n" + proc.output()[-3000:])
            return api.ping()
        wait_until(up, 15, "the HTTPS server to answer /ping")
        return api

    def logs(self, api, **query):
        query.setdefault("limit", 10000)
        text = stelelib.get_text(api.url + "/api/v1/logs?" + urllib.parse.urlencode(query), timeout=10)
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def test_tls_cluster(self):
        ca, crt, key = self.make_certs()
        # Every urllib call of stelelib (Api, get_text) verifies with the cluster CA.
        ctx = ssl.create_default_context(cafile=ca)
        urllib.request.install_opener(urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx)))
        self.addCleanup(urllib.request.install_opener, None)

        # A bad key is a startup error naming the file.
        bad = self.stele("server", "--data-dir", self.h.path("bad", "x")[:-2], "--listen", "127.0.0.1:%d" % API_PORT,
                         "--forward-listen", "off", "--graphite-listen", "off", "--router-listen", "off",
                         "--tls-cert", crt, "--tls-key", ca, check=False)
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn(ca, bad.stderr)

        api = self.start_server(ca, crt, key)

        # Plain HTTP to the TLS port: no HTTP answer.
        with socket.create_connection(("127.0.0.1", API_PORT), timeout=5) as s:
            s.sendall(b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            got = b""
            try:
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    got += chunk
            except (socket.timeout, ConnectionResetError):
                pass
        self.assertFalse(got.startswith(b"HTTP/"), got[:200])

        # An agent over https://, verifying with --tls-ca; the sample app runs.
        root = os.path.join(self.h.tmp, "agent")
        os.makedirs(root, exist_ok=True)
        self.h.task_roots.append(root)
        stelelib.Agent(self.h, "agent", root, API, "tlshost", "agent-tls", TASK_PORTS,
                       {"args": ["--tls-ca", ca]}).start()
        wait_until(lambda: [n for n in api.get("/api/v1/nodes")["nodes"] if n["state"] == "active"], 20,
                   "the agent active over https")
        api.post("/v2/apps", stelelib.sample_app("/web", instances=1))
        tasks = self.wait_healthy(api, "/web", 1, timeout=40)
        self.assertIn(tasks[0]["id"], stelelib.task_answers(tasks[0]) or "")

        # Its output (the http.server's request lines) shipped over TLS into the store.
        wait_until(lambda: [r for r in self.logs(api, app="/web") if "/health" in json.dumps(r)], 30,
                   "the app's output in the log store")

        # The CLI: with --ca it lists the app; without it, a verification error naming the server.
        listed = self.stele("apps", "--api", API, "--ca", ca)
        self.assertIn("/web", listed.stdout)
        env = dict(os.environ, STELE_CA=ca)
        self.assertIn("/web", self.stele("apps", "--api", API, env=env).stdout)
        refused = self.stele("apps", "--api", API, check=False)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("certificate verify failed", refused.stderr)
        self.assertIn("127.0.0.1:%d" % API_PORT, refused.stderr)

        # git push over HTTPS: the post-receive hook calls the server back on
        # https:// and verifies it with the STELE_CA the server hands it.
        api.post("/api/v1/apps", {"id": "/shop/web", "cmd": "sleep 1000", "cpus": 0.1, "mem": 32, "instances": 0})
        work = self.h.path("work", "x")[:-2]
        genv = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.h.tmp, "GIT_CONFIG_NOSYSTEM": "1",
                "GIT_TERMINAL_PROMPT": "0", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_SSL_CAINFO": ca}
        subprocess.run(["git", "init", "-q", "-b", "main", work], env=genv, check=True)
        with open(os.path.join(work, "stele.json"), "w") as f:
            f.write('{"cmd": "sleep 1000", "branch": "production"}\n')
        subprocess.run(["git", "add", "-A"], cwd=work, env=genv, check=True)
        subprocess.run(["git", "commit", "-q", "-m", "first"], cwd=work, env=genv, check=True)
        push = subprocess.run(["git", "push", API + "/git/shop_web.git", "main"], cwd=work, env=genv,
                              capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        self.assertEqual(push.returncode, 0, push.stderr)
        self.assertIn("is not the deploy branch", push.stderr)  # the pipeline answered the hook
        self.assertNotIn("did not start", push.stderr)

        # npm fluent-logger with tls: true sends a record that is then stored.
        if not shutil.which("node") or not os.path.isdir(os.path.join(NODE_MODULES, "fluent-logger")):
            self.fail("node or fluent-logger missing: run scripts/bootstrap (cd tests/integration && npm ci)")
        script = self.h.path("clients", "fluent-tls.js")
        with open(script, "w") as f:
            f.write(FLUENT_TLS_JS)
        r = subprocess.run(["node", script, str(FORWARD_PORT), ca, "one"], capture_output=True, text=True,
                           timeout=60, env=dict(os.environ, NODE_PATH=NODE_MODULES), stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        rows = wait_until(lambda: self.logs(api, tag="tls.one"), 15, "the fluent-logger record stored")
        self.assertEqual(rows[0].get("record", rows[0]).get("log"), "over tls one")


if __name__ == "__main__":
    unittest.main()
