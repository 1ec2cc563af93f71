#!/usr/bin/env python3
"""The dashboard's overview at scale: navigation -> rendered, in Debian's Chromium.

Starts a `stele server` and a simulated cluster (bench/sim_agents.py: --agents
agents, --apps apps of --instances/--apps instances each, all running), then
tests/ui/scale.mjs (playwright-core) loads /ui/ --cold times in a fresh profile
and --warm times more in each (assets cached). "Rendered" is defined in
tests/ui/scale.mjs: the apps panel says "Apps (N)" with its first row drawn
("apps"), and also all instances in their table and a meter per node
("overview"); stamped a frame after, from the navigation's start. Prints the
medians (min-max), the overview's API answers (bytes, gzipped bytes, ms) and
the assets' sizes gzipped.

    STELE_BIN=build/stele python3 bench/dashboard_bench.py --apps 500 --instances 5000 --agents 50

Needs /usr/bin/chromium and tests/ui/node_modules (scripts/bootstrap).
"""
import argparse
import asyncio
import gzip
import json
import os
import re
import statistics
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
import sim_agents  # noqa: E402

# What the overview asks for (ui/src/pages/overview.js and its panels).
OVERVIEW_CALLS = ["/api/v1/apps", "/api/v1/tasks", "/api/v1/nodes", "/api/v1/deployments",
                  "/api/v1/events?limit=14", "/api/v1/checks/status?failing=1"]


def get(url, gz=False):
    """(body bytes as sent, Content-Encoding, seconds)."""
    req = urllib.request.Request(url, headers={"Accept-Encoding": "gzip" if gz else "identity"})
    t0 = time.time()
    with urllib.request.urlopen(req, timeout=60) as r:
        body = r.read()
        return body, r.headers.get("Content-Encoding"), time.time() - t0


def sizes(url):
    print("overview API answers (as sent / gzip -6 of that / server time, median of 5):")
    for path in OVERVIEW_CALLS:
        times = []
        for _ in range(5):
            body, _, dt = get(url + path)
            times.append(dt)
        print("  %-36s %9d B  %8d B  %6.1f ms" % (path, len(body), len(gzip.compress(body, 6)),
                                                  1000 * statistics.median(times)))
    index, _, _ = get(url + "/ui/")
    total = 0
    print("assets (gzipped, as served):")
    for name in ["index.html"] + re.findall(r'(?:src|href)="/ui/([^"]+)"', index.decode()):
        body, enc, _ = get(url + "/ui/" + ("" if name == "index.html" else name), gz=True)
        total += len(body)
        print("  %-28s %8d B (%s)" % (name, len(body), enc or "identity"))
    print("  %-28s %8d B (target < 300 KB)" % ("total", total))


def summary(label, xs):
    return "%s %.0f ms (%.0f-%.0f)" % (label, statistics.median(xs), min(xs), max(xs))


def report(loads):
    for kind in ("cold", "warm"):
        ls = [x for x in loads if x["kind"] == kind]
        if not ls:
            continue
        print("%s, %d loads, medians (min-max): %s; %s; %s; long tasks %s; JS heap %.0f MB" % (
            kind, len(ls), summary("overview", [x["overview"] for x in ls]), summary("apps", [x["apps"] for x in ls]),
            summary("first paint", [x["fcp"] or 0 for x in ls]), summary("", [x["longtasks"] for x in ls]).strip(),
            statistics.median([x["heapMB"] or 0 for x in ls])))
        by_path = {}
        for x in ls:
            for a in x["api"]:
                by_path.setdefault(a["path"], []).append(a["end"])
        print("  API answers complete at (median ms after navigation): " +
              ", ".join("%s %.0f" % (p, statistics.median(v)) for p, v in sorted(by_path.items(), key=lambda kv: statistics.median(kv[1]))))


async def run(args):
    server = None if args.server else sim_agents.Server(probe_interval=args.probe_interval)
    url = args.server or server.url
    cluster = None
    try:
        if not args.server or args.populate:
            cluster = await sim_agents.populate(url, args.agents, args.apps, args.instances // args.apps, args.timeout,
                                                agents_first=False, progress=lambda m: print(m, flush=True))
        sizes(url)
        env = dict(os.environ, STELE_URL=url, STELE_SCALE_APPS=str(args.apps), STELE_SCALE_INSTANCES=str(args.instances),
                   STELE_SCALE_NODES=str(args.agents), STELE_BENCH_COLD=str(args.cold), STELE_BENCH_WARM=str(args.warm))
        proc = await asyncio.create_subprocess_exec("node", os.path.join(ROOT, "tests", "ui", "scale.mjs"), "bench",
                                                    env=env, cwd=ROOT, stdout=asyncio.subprocess.PIPE)
        loads = []
        async for line in proc.stdout:
            x = json.loads(line)
            loads.append(x)
            print("  %s round %d: overview %.0f ms, apps %.0f ms" % (x["kind"], x["round"], x["overview"], x["apps"]), flush=True)
        if await proc.wait() != 0:
            raise SystemExit("tests/ui/scale.mjs bench failed")
        report(loads)
    finally:
        if cluster:
            await cluster.stop()
        if server:
            server.stop()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", help="an existing server's URL (default: start one)")
    p.add_argument("--populate", action="store_true", help="with --server: create the apps and agents there too")
    p.add_argument("--agents", type=int, default=50)
    p.add_argument("--apps", type=int, default=500)
    p.add_argument("--instances", type=int, default=5000, help="in all, spread evenly over the apps")
    p.add_argument("--cold", type=int, default=5, help="rounds, each a fresh browser profile")
    p.add_argument("--warm", type=int, default=5, help="loads after the cold one in each round")
    p.add_argument("--probe-interval", type=float, default=0, help="the server's port probes (default off)")
    p.add_argument("--timeout", type=int, default=600)
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
