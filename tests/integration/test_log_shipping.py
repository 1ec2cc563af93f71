"""Logs, shipping without loss (issue 4 point 2): an app's output travels from
its executor's spool through the agent's forward-protocol shipper into the
server's log store. `kill -9` of the server, or of the agent, while the app
logs at full speed, then a restart: once the agent has resent, the stored
sequence has no gap and no duplicate.

Run: STELE_BIN=build/stele python3 tests/integration/test_log_shipping.py -v
Task ports: 31940-31959.
"""

import json
import os
import sys
import time
import urllib.parse

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import stelelib  # noqa: E402
from stelelib import SteleTestCase, wait_until  # noqa: E402

APP = "/chatty"
BLOCKS, PER_BLOCK = 40, 5000  # 200,000 lines in ~4 s of bursts at full speed
TOTAL = BLOCKS * PER_BLOCK

# Writes "n=<i> ..." lines in bursts (each burst one write at full speed),
# then a marker, then idles (a task that exits would be restarted).
LOGGER = ("import sys,time\n"
          "pad='x'*60\n"
          "i=0\n"
          "for b in range(%d):\n"
          "    sys.stdout.write(''.join('n=%%d %%s\\n' %% (i+j+1, pad) for j in range(%d)))\n"
          "    sys.stdout.flush()\n"
          "    i+=%d\n"
          "    time.sleep(0.1)\n"
          "sys.stderr.write('done\\n'); sys.stderr.flush()\n"
          "time.sleep(100000)\n") % (BLOCKS, PER_BLOCK, PER_BLOCK)


def chatty_app():
    return {"id": APP, "cmd": "exec python3 -u -c \"$LOGGER\"", "env": {"LOGGER": LOGGER},
            "instances": 1, "cpus": 0.2, "mem": 128}


def stored(api):
    """Every record of APP, paged by seq (GET /api/v1/logs?after=)."""
    rows, after = [], 0
    while True:
        q = urllib.parse.urlencode({"app": APP, "after": after, "limit": 100000})
        text = stelelib.get_text(api.url + "/api/v1/logs?" + q, timeout=30)
        page = [json.loads(line) for line in text.splitlines() if line.strip()]
        rows += page
        if len(page) < 100000:
            return rows
        after = page[-1]["seq"]


def count(api):
    try:
        return len(stored(api))
    except Exception:  # the server is down or restarting
        return -1


class LogShippingTest(SteleTestCase):

    def start(self):
        server = self.h.server()
        agent = self.h.agent(server, "agent", "shiphost", "31940-31959", agent_id="agent-ship")
        api = server.api
        wait_until(lambda: [n for n in api.get("/api/v1/nodes")["nodes"] if n["state"] == "active"], 15,
                   "agent active")
        api.post("/v2/apps", chatty_app())
        return server, agent, api

    def wait_some(self, api, low):
        return wait_until(lambda: (lambda c: c if c >= low else None)(count(api)), 30,
                          "at least %d records stored" % low)

    def assert_complete(self, api, what):
        def done():
            rows = stored(api)
            logs = [r["record"].get("log", "") for r in rows]
            return rows if "done" in logs and len(rows) >= TOTAL + 1 else None
        try:
            rows = wait_until(done, 90, "all %d lines of %s stored" % (TOTAL, APP))
        except stelelib.WaitTimeout:
            rows = stored(api)
        got = [int(r["record"]["log"].split()[0][2:]) for r in rows if r["record"].get("log", "").startswith("n=")]
        missing = sorted(set(range(1, TOTAL + 1)) - set(got))
        dups = len(got) - len(set(got))
        self.assertEqual(missing, [], "%s: %d lines missing (first %s)" % (what, len(missing), missing[:5]))
        self.assertEqual(dups, 0, "%s: %d lines stored twice" % (what, dups))
        # Within one stream the stored order is the order written.
        self.assertEqual(got, sorted(got), "%s: stdout lines out of order" % what)
        rec = rows[0]["record"]
        self.assertEqual(rows[0]["tag"], "stele.chatty.stdout")
        for field in ("app", "release", "task", "node", "stream", "log"):
            self.assertIn(field, rec)
        self.assertEqual(rec["app"], APP)
        self.assertEqual(rec["node"], "shiphost")
        stderr = [r for r in rows if r["record"].get("stream") == "stderr"]
        self.assertEqual([r["tag"] for r in stderr], ["stele.chatty.stderr"])
        return rows

    def test_01_server_killed_while_the_app_logs(self):
        server, agent, api = self.start()
        before = self.wait_some(api, 1000)
        server.proc.kill9()
        time.sleep(1.0)  # the app keeps logging into its spool meanwhile
        server.start()
        self.assertLess(before, TOTAL, "the kill came after everything was shipped: the test proves nothing")
        self.assert_complete(api, "server kill -9")
        self.assertTrue(agent.proc.alive())

    def test_02_agent_killed_while_the_app_logs(self):
        server, agent, api = self.start()
        before = self.wait_some(api, 1000)
        agent.proc.kill9()
        time.sleep(1.0)
        agent.start()
        self.assertLess(before, TOTAL, "the kill came after everything was shipped: the test proves nothing")
        self.assert_complete(api, "agent kill -9")


if __name__ == "__main__":
    stelelib.main()
