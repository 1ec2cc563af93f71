"""Logs, forward output: `stele server --forward-to` relays everything its log
store holds to an upstream forward server, with acks and retry, and every
record arrives there exactly as a real client sent it to stele, once.

The upstream is `@fluent-org/logger`'s FluentServer (a complete forward
protocol server: PackedForward, EventTime, acks, the shared-key handshake),
run by node from tests/integration/node_modules (scripts/bootstrap installs
it); it prints every entry it receives as a JSON line. Records reach stele's
forward input from @fluent-org/logger's FluentClient, as in test_forward.py.
The upstream is started late, so the relay first holds records and retries.

Run: STELE_BIN=build/stele python3 tests/integration/test_forward_out.py -v
"""

import collections
import json
import os
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import stelelib  # noqa: E402
from stelelib import HERE, SteleTestCase, free_port, wait_until  # noqa: E402

NODE_MODULES = os.path.join(HERE, "node_modules")

# The upstream: FluentServer on 127.0.0.1:<port> (optionally with a shared
# key); one JSON line per received entry.
UPSTREAM_JS = r"""
const {FluentServer} = require('@fluent-org/logger');
const [port, sharedKey] = process.argv.slice(2);
const options = {listenOptions: {host: '127.0.0.1', port: Number(port)}};
if (sharedKey) {
  options.security = {serverHostname: 'it-upstream', sharedKey: sharedKey, authorize: false, userDict: {}};
}
const server = new FluentServer(options);
server.on('entry', (tag, time, record) => {
  const t = typeof time === 'number' ? {seconds: time} : {epoch: time.epoch, nano: time.nano};
  process.stdout.write(JSON.stringify({upstream_entry: {tag: tag, time: t, record: record}}) + '\n');
});
server.listen().then(() => process.stdout.write(JSON.stringify({upstream_listening: server.port}) + '\n'));
process.on('SIGTERM', () => server.close().then(() => process.exit(0)));
"""

# A real sender into stele's forward input: n records of one tag, acked,
# EventTime with nanoseconds, fields of every JSON type.
SENDER_JS = r"""
const {FluentClient, EventTime} = require('@fluent-org/logger');
const [port, tag, mode, label, n] = process.argv.slice(2);
const client = new FluentClient(tag, {
  socket: {host: '127.0.0.1', port: Number(port), timeout: 5000},
  ack: {ackTimeout: 5000},
  eventMode: mode,
  flushInterval: 20,
});
(async () => {
  const sends = [];
  for (let i = 0; i < Number(n); i++) {
    const record = {log: label + ' ' + i, i: i, pi: 3.14159, ok: i % 2 === 0, none: null,
                    nested: {list: [1, 'two', {three: 3}], text: 'h\u00e9llo \u2713'}};
    sends.push(client.emit(record, new EventTime(1700000000 + i, 123456789)));
  }
  await Promise.all(sends);
  await client.shutdown();
  process.exit(0);
})().catch((e) => { console.error('failed:', e && (e.stack || e.message || e)); process.exit(1); });
setTimeout(() => { console.error('timed out'); process.exit(2); }, 20000);
"""


def expected(tag, label, n):
    """The entries SENDER_JS sends, as the upstream prints them."""
    return [{"tag": tag, "time": {"epoch": 1700000000 + i, "nano": 123456789},
             "record": {"log": "%s %d" % (label, i), "i": i, "pi": 3.14159, "ok": i % 2 == 0, "none": None,
                        "nested": {"list": [1, "two", {"three": 3}], "text": "h\u00e9llo \u2713"}}}
            for i in range(n)]


def key(entry):
    return json.dumps(entry, sort_keys=True)


# stelelib's Server passes its forward flags through forward_flags(port,
# extra); --forward-to rides along the same way.
_base_forward_flags = stelelib.forward_flags


def _forward_flags(port, extra):
    argv = _base_forward_flags(port, extra)
    if extra.get("forward_to"):
        argv += ["--forward-to", extra["forward_to"]]
    if extra.get("forward_to_shared_key"):
        argv += ["--forward-to-shared-key", extra["forward_to_shared_key"]]
    return argv


stelelib.forward_flags = _forward_flags


class ForwardOutTest(SteleTestCase):

    def setUp(self):
        super().setUp()
        if not (shutil.which("node") and os.path.isdir(os.path.join(NODE_MODULES, "@fluent-org", "logger"))):
            self.fail("node or @fluent-org/logger is missing: run scripts/bootstrap "
                      "(cd tests/integration && npm ci) -- looked in %s" % NODE_MODULES)
        self.env = dict(os.environ, NODE_PATH=NODE_MODULES)

    def script(self, name, text):
        path = self.h.path("clients", name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def start_upstream(self, port, shared_key=""):
        path = self.script("upstream.js", UPSTREAM_JS)
        proc = self.h.spawn("upstream", ["node", path, str(port), shared_key], env=self.env)
        wait_until(lambda: "upstream_listening" in proc.output() or self._dead(proc), 15, "the upstream to listen")
        return proc

    @staticmethod
    def _dead(proc):
        if not proc.alive():
            raise AssertionError("%s exited:\n%s" % (proc.name, proc.output()[-3000:]))
        return False

    def received(self, upstream):
        """Every entry of this test's tags (it.out.*) the upstream printed so
        far (complete lines only): the store may hold records of stele's own."""
        out = []
        for line in upstream.output().splitlines():
            if line.startswith('{"upstream_entry"'):
                try:
                    entry = json.loads(line)["upstream_entry"]
                except ValueError:
                    continue  # a line still being written
                if entry["tag"].startswith("it.out."):
                    out.append(entry)
        return out

    def send(self, server, tag, mode, label, n):
        path = self.script("sender.js", SENDER_JS)
        r = subprocess.run(["node", path, str(server.forward_port), tag, mode, label, str(n)], capture_output=True,
                           text=True, timeout=60, env=self.env, stdin=subprocess.DEVNULL)
        with open(os.path.join(self.h.logdir, "node.log"), "a") as f:
            f.write("$ node sender.js %s %s %s\n[exit %d]\n%s%s\n" % (tag, mode, n, r.returncode, r.stdout, r.stderr))
        self.assertEqual(r.returncode, 0, "sending %s to stele: %s" % (tag, r.stderr))
        return expected(tag, label, n)

    def expect_exactly(self, upstream, want, what):
        """The upstream received each of `want` once and nothing else."""
        want_counts = collections.Counter(key(e) for e in want)

        def complete():
            got = collections.Counter(key(e) for e in self.received(upstream))
            return got if all(got[k] >= n for k, n in want_counts.items()) else None
        try:
            got = wait_until(complete, 45, what)
        except stelelib.WaitTimeout:
            got = collections.Counter(key(e) for e in self.received(upstream))
            missing = [k for k in want_counts if got[k] < want_counts[k]]
            self.fail("%s: %d of %d records missing upstream, e.g. %s" % (what, len(missing), len(want_counts),
                                                                         missing[:2]))
        extra = {k: n for k, n in got.items() if n != want_counts.get(k, 0)}
        self.assertEqual(extra, {}, "%s: records duplicated or unexpected upstream" % what)

    def test_relays_held_records_once_the_upstream_comes_then_follows(self):
        upstream_port = free_port()
        server = self.h.server(forward_to="127.0.0.1:%d" % upstream_port)
        # The upstream is not there yet: the relay holds the records and retries.
        want = self.send(server, "it.out.early", "PackedForward", "early", 40)
        want += self.send(server, "it.out.other", "Message", "other", 5)
        wait_until(lambda: "forward-to: " in server.proc.output() and "retrying" in server.proc.output(), 15,
                   "the relay to report the upstream missing")
        upstream = self.start_upstream(upstream_port)
        self.expect_exactly(upstream, want, "records held while the upstream was down")
        self.assertIn("delivering again", server.proc.output())

        # Steady state: new records follow, none is sent twice.
        want += self.send(server, "it.out.live", "Forward", "live", 30)
        self.expect_exactly(upstream, want, "records sent while the upstream was up")

        # A restarted server continues after its cursor: nothing is resent.
        server.proc.stop()
        with open(os.path.join(server.data_dir, "logs", "forward-to.cursor")) as f:
            acked = int(f.read().split(" acked=")[1].split()[0])
        self.assertGreaterEqual(acked, len(want), "the cursor file records the acks")
        server.start()
        want += self.send(server, "it.out.after-restart", "CompressedPackedForward", "after", 10)
        self.expect_exactly(upstream, want, "records sent after a restart of stele")

    def test_shared_key_upstream(self):
        upstream_port = free_port()
        upstream = self.start_upstream(upstream_port, shared_key="it-relay-secret")
        server = self.h.server(forward_to="127.0.0.1:%d" % upstream_port, forward_to_shared_key="it-relay-secret")
        want = self.send(server, "it.out.secure", "PackedForward", "secure", 20)
        self.expect_exactly(upstream, want, "records relayed through the shared-key handshake")


if __name__ == "__main__":
    stelelib.main()
