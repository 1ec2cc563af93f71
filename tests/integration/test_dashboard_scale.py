#!/usr/bin/env python3
"""The 500-app overview lists every app (issue 9): a `stele server` with 50
simulated agents (bench/sim_agents.py, the real agent protocol) and 500 apps of
2 instances, all running; then tests/ui/scale.mjs check in Debian's Chromium:
the count says 500, scrolling the virtualised table meets every id, the filter
box finds the first, a random middle and the last app, whose page opens.
Screenshots in $STELE_UI_ARTIFACTS/scale (default test-artifacts/ui/scale beside
$STELE_BIN).

Run: STELE_BIN=build/stele python3 tests/integration/test_dashboard_scale.py -v
Ports: 32440-32443 (API, forward, graphite, router); the simulated agents'
ports are never listened on (probes are off).
"""
import asyncio
import os
import subprocess
import sys

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "bench"))

import stelelib  # noqa: E402
from stelelib import SteleTestCase  # noqa: E402
import sim_agents  # noqa: E402
from test_dashboard import ARTIFACTS, CHROMIUM, UI_TESTS  # noqa: E402

API_PORT, FORWARD_PORT, GRAPHITE_PORT, ROUTER_PORT = 32440, 32441, 32442, 32443
APPS, INSTANCES, AGENTS = 500, 2, 50


class DashboardScaleTest(SteleTestCase):

    def test_overview_lists_every_app(self):
        self.assertTrue(os.access(CHROMIUM, os.X_OK), "%s missing: scripts/bootstrap installs chromium" % CHROMIUM)
        server = stelelib.Server(self.h, "server", os.path.join(self.h.tmp, "server"), API_PORT,
                                 {"forward_port": FORWARD_PORT, "graphite_port": GRAPHITE_PORT,
                                  "router_port": ROUTER_PORT, "probe_interval": 0, "agent_timeout": 60,
                                  "deploy_timeout": 600}).start()
        env = dict(os.environ, STELE_URL=server.url, STELE_SCALE_APPS=str(APPS), STELE_SCALE_INSTANCES=str(APPS * INSTANCES),
                   STELE_SCALE_NODES=str(AGENTS), STELE_UI_ARTIFACTS=os.path.join(ARTIFACTS, "scale"), CHROMIUM=CHROMIUM)

        async def run():
            cluster = await sim_agents.populate(server.url, AGENTS, APPS, INSTANCES, timeout=120, agents_first=False,
                                                progress=stelelib.log)
            try:
                proc = await asyncio.create_subprocess_exec("node", os.path.join(UI_TESTS, "scale.mjs"), "check",
                                                            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                out, _ = await asyncio.wait_for(proc.communicate(), 120)
                return proc.returncode, out.decode()
            finally:
                await cluster.stop()
        rc, out = asyncio.run(run())
        sys.stderr.write(out)
        self.assertEqual(rc, 0, "the 500-app overview (screenshots in %s/scale):\n%s" % (ARTIFACTS, out))


if __name__ == "__main__":
    stelelib.main()
