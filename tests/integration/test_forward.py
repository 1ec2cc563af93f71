"""Logs, forward input: the real npm clients send known records to `stele
server --forward-listen`, and every record is found by GET /api/v1/logs?tag=,
none twice.

Clients (tests/integration/node_modules, installed by scripts/bootstrap with
`npm ci`): `fluent-logger` (Message mode, with requireAckResponse, and with
security.sharedKey against a server started with --forward-shared-key) and
`@fluent-org/logger` (Message, Forward, PackedForward and
CompressedPackedForward, EventTime, with acks).

Run: STELE_BIN=build/stele python3 tests/integration/test_forward.py -v
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import unittest
import urllib.error
import urllib.parse

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import stelelib  # noqa: E402
from stelelib import HERE, SteleTestCase, wait_until  # noqa: E402

NODE_MODULES = os.path.join(HERE, "node_modules")

# fluent-logger (v3): Message mode; with requireAckResponse each event carries
# a chunk and waits for its ack. `emit`'s callback fires once sent (or acked).
FLUENT_LOGGER_JS = r"""
const logger = require('fluent-logger');
const [port, tagPrefix, label, n, ack, sharedKey] = process.argv.slice(2);
const opts = {host: process.env.FLUENT_HOST || '127.0.0.1', port: Number(port), timeout: 5.0, reconnectInterval: 500,
              requireAckResponse: ack === '1', ackResponseTimeout: 5000};
if (sharedKey) opts.security = {clientHostname: 'it-client', sharedKey: sharedKey};
const sender = logger.createFluentSender(tagPrefix, opts);
let pending = Number(n), failed = false;
sender.on('error', (e) => { console.error('sender error:', e && e.message); failed = true; });
for (let i = 0; i < Number(n); i++) {
  sender.emit(label, {log: 'fluent-logger ' + label + ' ' + i, i: i}, (err) => {
    if (err) { console.error('emit failed:', err.message || err); failed = true; }
    if (--pending === 0) sender.end(null, null, () => process.exit(failed ? 1 : 0));
  });
}
setTimeout(() => { console.error('timed out with', pending, 'unsent'); process.exit(2); }, 20000);
"""

# @fluent-org/logger: one of its four modes, EventTime, acks.
FLUENT_ORG_JS = r"""
const {FluentClient, EventTime} = require('@fluent-org/logger');
const [port, tag, mode, n] = process.argv.slice(2);
const client = new FluentClient(tag, {
  socket: {host: '127.0.0.1', port: Number(port), timeout: 5000},
  ack: {ackTimeout: 5000},
  eventMode: mode,
  milliseconds: false,
  flushInterval: 20,
});
(async () => {
  const sends = [];
  for (let i = 0; i < Number(n); i++) {
    const time = new EventTime(1700000000 + i, 123456789);
    sends.push(client.emit({log: mode + ' ' + i, i: i}, time));
  }
  await Promise.all(sends);
  await client.shutdown();
  process.exit(0);
})().catch((e) => { console.error('failed:', e && (e.stack || e.message || e)); process.exit(1); });
setTimeout(() => { console.error('timed out'); process.exit(2); }, 20000);
"""


def have_node_clients():
    return shutil.which("node") and os.path.isdir(os.path.join(NODE_MODULES, "fluent-logger")) and \
        os.path.isdir(os.path.join(NODE_MODULES, "@fluent-org", "logger"))


class ForwardTest(SteleTestCase):

    def setUp(self):
        super().setUp()
        if not have_node_clients():
            self.fail("node or the npm clients are missing: run scripts/bootstrap "
                      "(cd tests/integration && npm ci) -- looked in %s" % NODE_MODULES)

    def node(self, script, *args):
        name = "fluent-logger.js" if script is FLUENT_LOGGER_JS else "fluent-org-logger.js"
        path = self.h.path("clients", name)
        with open(path, "w") as f:
            f.write(script)
        env = dict(os.environ, NODE_PATH=NODE_MODULES)
        r = subprocess.run(["node", path] + [str(a) for a in args], capture_output=True, text=True, timeout=60,
                           env=env, stdin=subprocess.DEVNULL)
        with open(os.path.join(self.h.logdir, "node.log"), "a") as f:
            f.write("$ node %s %s\n[exit %d]\n%s%s\n" % (path, " ".join(map(str, args)), r.returncode, r.stdout, r.stderr))
        return r

    def logs(self, api, tag):
        """Records stored under `tag`: GET /api/v1/logs answers JSON lines (docs/api.md)."""
        path = "/api/v1/logs?" + urllib.parse.urlencode({"tag": tag, "limit": 10000})
        try:
            text = stelelib.get_text(api.url + path, timeout=10)
        except urllib.error.HTTPError as e:
            self.fail("GET %s -> %d %s" % (path, e.code, e.read()[:500]))
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    @staticmethod
    def record_of(row):
        return row.get("record", row) if isinstance(row, dict) else row

    def expect_records(self, api, tag, want_logs):
        def complete():
            got = [self.record_of(r).get("log") for r in self.logs(api, tag)]
            return got if sorted(got) == sorted(want_logs) or len(got) > len(want_logs) else None
        got = wait_until(complete, 15, "%d records of tag %s" % (len(want_logs), tag))
        self.assertEqual(sorted(got), sorted(want_logs), "tag %s: records missing or stored twice" % tag)

    def test_fluent_logger_message_mode_and_acks(self):
        server = self.h.server()
        port = server.forward_port
        r = self.node(FLUENT_LOGGER_JS, port, "it", "plain", 20, "0", "")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.expect_records(server.api, "it.plain", ["fluent-logger plain %d" % i for i in range(20)])
        r = self.node(FLUENT_LOGGER_JS, port, "it", "acked", 20, "1", "")
        self.assertEqual(r.returncode, 0, r.stderr)
        # With requireAckResponse the client returned only after every ack:
        # the records are already queryable.
        rows = self.logs(server.api, "it.acked")
        self.assertEqual(sorted(self.record_of(x)["log"] for x in rows),
                         sorted("fluent-logger acked %d" % i for i in range(20)))

    def test_fluent_logger_shared_key(self):
        server = self.h.server(forward_shared_key="it-secret")
        port = server.forward_port
        r = self.node(FLUENT_LOGGER_JS, port, "it", "secure", 10, "1", "it-secret")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.expect_records(server.api, "it.secure", ["fluent-logger secure %d" % i for i in range(10)])
        # The wrong key is refused: nothing of it is stored.
        r = self.node(FLUENT_LOGGER_JS, port, "it", "intruder", 3, "1", "wrong-key")
        self.assertNotEqual(r.returncode, 0, "a sender with the wrong key was acked:\n" + r.stdout + r.stderr)
        self.assertEqual(self.logs(server.api, "it.intruder"), [])

    def test_fluent_org_logger_every_mode_with_event_time(self):
        server = self.h.server()
        port = server.forward_port
        for mode in ("Message", "Forward", "PackedForward", "CompressedPackedForward"):
            tag = "it.org." + mode.lower()
            r = self.node(FLUENT_ORG_JS, port, tag, mode, 25)
            self.assertEqual(r.returncode, 0, "%s: %s" % (mode, r.stderr))
            self.expect_records(server.api, tag, ["%s %d" % (mode, i) for i in range(25)])
            rows = self.logs(server.api, tag)
            times = sorted(x["time_ns"] for x in rows if isinstance(x, dict) and "time_ns" in x)
            if times:  # EventTime keeps nanoseconds
                self.assertEqual(times[0], 1700000000 * 10**9 + 123456789, mode)

    def test_udp_heartbeat(self):
        server = self.h.server()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.sendto(b"", ("127.0.0.1", server.forward_port))
            data, _ = s.recvfrom(16)
        self.assertEqual(data, b"\0")


if __name__ == "__main__":
    unittest.main()
