#!/usr/bin/env python3
"""Graphite ingest and render: Stele against VictoriaMetrics and carbon-cache
(+ graphite-web), fed the same points in the same run, interleaved round by round.

Ingest: --series (100,000) series x --points (20) points of
`a.b.series<k>.metric v ts` (ts every 10 s, ending now), built in memory
before the clock starts and sent over ONE TCP connection in 4 MiB sendall()s
from this process (on --gen-cpu). The clock runs from the first byte sent to:

  stele             a real `stele server --graphite-listen` (fresh temp data dir
                    per round, --metrics-schemas of --schema), pinned with
                    `taskset -c <--stele-cpu>` (the whole process). Stops when
                    stele_metrics_points_durable_total (points written and
                    fdatasync'ed) has grown by the points sent; a few series are
                    then rendered back to check every point is there.
  victoria-metrics  victoria-metrics 1.79 -graphiteListenAddr (Debian's), as in
                    shared/peers.md: its /metrics is cached ~1 s, so the clock stops
                    when the connection is drained (the sender's send queue and the
                    server's receive queue both empty in /proc/net/tcp), then
                    vm_rows_inserted_total{type="graphite"} must reach the count.
                    It does not fsync per point: "durable" here is "accepted".
  carbon-cache      carbon-cache 1.1.7 (Debian's, tests/peers/graphite_peer.py: all
                    limits inf, the same --schema). Received: the connection drained
                    (and its own metricsReceived reaches the count, or stops); persisted:
                    its own cache.size back to ~0 after that (carbon's records, 1 s
                    resolution); then every point is read back from the whisper
                    files (untimed) and must be there.

Render: --render-series (1,000) series x 1 h at 10 s (360 points each) sent to a
fresh Stele and a fresh carbon-cache + graphite-web 1.1.8 (threaded wsgiref
runner), both persisted; then `sumSeries(r.b.series*.metric)` with explicit
epoch from/until, format=json, --render-reps (15) times each, alternating;
median wall time per request (one untimed warm-up each). Both sums must equal
the one computed here.

Disk: bytes allocated (st_blocks) per point: Stele's data dir and VM's storage
dir after stop minus right after start; carbon's whisper files (preallocated
for the whole retention, so they say more about --schema than about carbon).

Usage: STELE_BIN=build/stele python3 bench/graphite_bench.py [--rounds 3] [--series 100000] [--points 20]
Traffic stays on 127.0.0.1; every process started here is stopped by its pid.
"""

import argparse
import json
import math
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, ".."))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(ROOT, "tests", "peers"))

import graphite_peer as gp  # noqa: E402
from benchlib import cpu_seconds, taskset  # noqa: E402

STELE = os.environ.get("STELE_BIN", os.path.join(ROOT, "build", "stele"))
STEP = 10
CHUNK = 4 << 20
DURABLE = "stele_metrics_points_durable_total"
REFUSED = "stele_metrics_points_refused_total"


# ---------- the workload ----------

def ingest_payload(series, points, end):
    """`a.b.series<k>.metric v ts` for every point (time-major: each interval,
    every series), the last interval ending at `end`."""
    first = end - points * STEP
    parts = []
    for j in range(points):
        ts = first + j * STEP
        parts.append("".join("a.b.series%d.metric %d %d\n" % (k, (k * 7 + j) % 1000, ts) for k in range(series)))
    return "".join(parts).encode()


def render_payload(series, end):
    """r.b.series<k>.metric every 10 s for the hour before `end`; also the expected sum per timestamp."""
    n = 3600 // STEP
    first = end - 3600
    lines, sums = [], {}
    for j in range(n):
        ts = first + j * STEP
        for k in range(series):
            v = ((k * 31 + j * 17) % 997) / 4.0
            lines.append("r.b.series%d.metric %r %d\n" % (k, v, ts))
            sums[ts] = sums.get(ts, 0.0) + v
    return "".join(lines).encode(), sums


# ---------- processes ----------

def http_text(url, timeout=30):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode(errors="replace")


class Sender:
    """One TCP connection to port; send() streams the payload and returns when it
    is all in the kernel; the socket stays open for drained()."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=600)
        self.port = port
        self.local_port = self.sock.getsockname()[1]

    def send(self, data):
        view = memoryview(data)
        for i in range(0, len(view), CHUNK):
            self.sock.sendall(view[i:i + CHUNK])

    def drained(self):
        return gp.drained(self.local_port, self.port)

    def close(self):
        self.sock.close()


def poll(fn, timeout, what, interval):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise RuntimeError("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(interval)


class SteleServer:
    def __init__(self, tmp, cpu, schema, max_series):
        self.work = tempfile.mkdtemp(prefix="stele-", dir=tmp)
        self.data = os.path.join(self.work, "data")
        self.api_port, self.graphite_port = gp.free_port(), gp.free_port()
        self.url = "http://127.0.0.1:%d" % self.api_port
        schemas = os.path.join(self.work, "storage-schemas.conf")
        with open(schemas, "w") as f:
            f.write("[bench]\npattern = .*\nretentions = %s\n" % schema)
        argv = taskset(cpu) + [STELE, "server", "--router-listen", "off", "--data-dir", self.data, "--listen", "127.0.0.1:%d" % self.api_port,
                               "--forward-listen", "off", "--graphite-listen", "127.0.0.1:%d" % self.graphite_port,
                               "--metrics-schemas", schemas, "--metrics-max-series", str(max_series)]
        self.proc = gp.Process("stele", argv, os.path.join(self.work, "server.log"))
        poll(lambda: self.proc.check_alive() or (gp.port_open(self.api_port) and gp.port_open(self.graphite_port)),
             30, "stele to listen on %d and %d" % (self.api_port, self.graphite_port), 0.05)
        self.disk0 = gp.disk_bytes(self.data)

    def durable(self):
        text = http_text(self.url + "/metrics", timeout=10)
        v = gp.prometheus_value(text, DURABLE)
        if v is None:
            raise RuntimeError("stele's /metrics has no %s" % DURABLE)
        refused = gp.prometheus_value(text, REFUSED)
        if refused:
            raise RuntimeError("stele refused %d points (see %s)" % (refused, self.proc.logpath))
        return v

    def render(self, params, timeout=120):
        return json.loads(http_text(self.url + "/render?" + urllib.parse.urlencode(params), timeout=timeout))

    def stop(self):
        """Stops it; returns the bytes its data dir grew by."""
        self.proc.stop(timeout=60)
        grown = gp.disk_bytes(self.data) - self.disk0
        shutil.rmtree(self.work, ignore_errors=True)
        return grown


# ---------- one ingest run per peer ----------

def ingest_stele(tmp, args, payload, n, end):
    s = SteleServer(tmp, args.stele_cpu, args.schema, args.series + 1000)
    try:
        base = s.durable()
        sender = Sender(s.graphite_port)
        cpu0 = cpu_seconds(s.proc.pid)
        t0 = time.perf_counter()
        sender.send(payload)
        poll(lambda: s.proc.check_alive() or s.durable() >= base + n, args.timeout,
             "%s to grow by %d" % (DURABLE, n), 0.02)
        secs = time.perf_counter() - t0
        cpu = cpu_seconds(s.proc.pid) - cpu0
        sender.close()
        check_stele_points(s, args, end)
        return {"secs": secs, "cpu": cpu, "note": "durable"}
    finally:
        disk = s.stop()
        ingest_stele.last_disk = disk


def check_stele_points(s, args, end):
    """Every point of a few series is there (first, middle, last)."""
    for k in sorted({0, args.series // 2, args.series - 1}):
        name = "a.b.series%d.metric" % k
        got = s.render({"target": name, "format": "json", "from": end - args.points * STEP - 1, "until": end - 1})
        have = {p[1]: p[0] for p in got[0]["datapoints"] if p[0] is not None} if got else {}
        want = {end - (args.points - j) * STEP: float((k * 7 + j) % 1000) for j in range(args.points)}
        if have != want:
            raise RuntimeError("stele's %s after ingest: %d of %d points, e.g. %s" % (
                name, len(have), len(want), sorted(set(want.items()) - set(have.items()))[:3]))


def ingest_vm(tmp, args, payload, n, end):
    vm = gp.start_victoria_metrics(tmp=tmp, extra_args=())
    disk0 = vm.disk_bytes()
    try:
        base = vm.rows_inserted() or 0
        sender = Sender(vm.graphite_port)
        cpu0 = cpu_seconds(vm.proc.pid)
        t0 = time.perf_counter()
        sender.send(payload)
        poll(sender.drained, args.timeout, "victoria-metrics to drain the connection", 0.002)
        secs = time.perf_counter() - t0
        cpu = cpu_seconds(vm.proc.pid) - cpu0
        poll(lambda: (vm.rows_inserted() or 0) >= base + n, 60, "vm_rows_inserted_total to grow by %d" % n, 0.2)
        sender.close()
        return {"secs": secs, "cpu": cpu, "note": "drained, then rows_inserted"}
    finally:
        vm.proc.stop(timeout=60)
        ingest_vm.last_disk = vm.disk_bytes() - disk0
        vm.stop()


def ingest_carbon(tmp, args, payload, n, end):
    peer = gp.start("[bench]\npattern = .*\nretentions = %s\n" % args.schema, None, tmp=tmp, web=False)
    try:
        sender = Sender(peer.line_port)
        cpu0 = cpu_seconds(peer.carbon.pid)
        t0, t0_epoch = time.perf_counter(), time.time()
        sender.send(payload)
        poll(sender.drained, args.timeout, "carbon-cache to drain the connection", 0.002)
        received = time.perf_counter() - t0
        done = peer.wait_persisted(n, timeout=args.timeout)
        cpu = cpu_seconds(peer.carbon.pid) - cpu0
        sender.close()
        # What is on disk, read back (untimed): every point of every series.
        missing, examples = peer.missing_points(("a.b.series%d.metric" % k for k in range(args.series)),
                                                [end - (args.points - j) * STEP for j in range(args.points)])
        if missing:
            raise RuntimeError("carbon's whisper files lack %d of %d points, e.g. %s" % (missing, n, examples))
        return {"secs": done["persisted_at"] - t0_epoch, "received_secs": received, "cpu": cpu,
                "note": "persisted (carbon's records, 1 s)"}
    finally:
        ingest_carbon.last_disk = peer.disk_bytes()
        peer.stop()


INGEST = {"stele": ingest_stele, "victoria-metrics": ingest_vm, "carbon": ingest_carbon}


# ---------- render ----------

def timed_get(url, timeout=300):
    t = time.perf_counter()
    with urllib.request.urlopen(url, timeout=timeout) as r:
        body = r.read()
    return time.perf_counter() - t, json.loads(body)


def check_sum(side, answer, sums):
    if len(answer) != 1:
        raise RuntimeError("%s: sumSeries answered %d series" % (side, len(answer)))
    got = {ts: v for v, ts in answer[0]["datapoints"] if v is not None}
    bad = [(ts, got.get(ts), v) for ts, v in sums.items() if got.get(ts) is None or
           not math.isclose(got[ts], v, rel_tol=1e-9)]
    if bad or len(got) != len(sums):
        raise RuntimeError("%s: sumSeries wrong at %d of %d timestamps (%d values), e.g. %s" % (
            side, len(bad), len(sums), len(got), bad[:3]))


def run_render(tmp, args, stele_on):
    end = int(time.time()) // 60 * 60
    payload, sums = render_payload(args.render_series, end)
    n = len(sums) * args.render_series
    params = {"target": "sumSeries(r.b.series*.metric)", "format": "json", "from": end - 3600 - 1, "until": end - 1}
    print("render: %d series x %d points (%.1f MiB), %s" % (args.render_series, len(sums), len(payload) / 2**20,
                                                           params["target"]), flush=True)
    peer = gp.start("[bench]\npattern = .*\nretentions = %s\n" % args.schema, None, tmp=tmp)
    s = SteleServer(tmp, args.stele_cpu, args.schema, args.render_series + 1000) if stele_on else None
    try:
        urls = {"graphite-web": peer.render_url() + "?" + urllib.parse.urlencode(params)}
        sender = Sender(peer.line_port)
        sender.send(payload)
        if s:
            base = s.durable()
            ss = Sender(s.graphite_port)
            ss.send(payload)
            poll(lambda: s.proc.check_alive() or s.durable() >= base + n, args.timeout, "stele to persist", 0.05)
            ss.close()
            urls["stele"] = s.url + "/render?" + urllib.parse.urlencode(params)
        peer.wait_persisted(n, timeout=args.timeout)
        sender.close()
        times = {k: [] for k in urls}
        for side, url in urls.items():  # warm-up, and the check
            _, answer = timed_get(url)
            check_sum(side, answer, sums)
        for _ in range(args.render_reps):
            for side in sorted(urls, reverse=True):  # stele first
                secs, _ = timed_get(urls[side])
                times[side].append(secs)
        return times
    finally:
        if s:
            s.stop()
        peer.stop()


# ---------- report ----------

def med(vals):
    return statistics.median(vals) if vals else float("nan")


def fmt_range(vals, scale=1.0, spec="{:,.0f}"):
    """median (min-max)"""
    if not vals:
        return "-"
    v = [x * scale for x in vals]
    return (spec + " (" + spec + "-" + spec + ")").format(statistics.median(v), min(v), max(v))


CLOCK = {"stele": "durable", "victoria-metrics": "drained", "carbon": "persisted"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--series", type=int, default=100_000)
    ap.add_argument("--points", type=int, default=20, help="points per series (every 10 s)")
    ap.add_argument("--peers", default="stele,victoria-metrics,carbon")
    ap.add_argument("--parts", default="ingest,render")
    ap.add_argument("--render-series", type=int, default=1000)
    ap.add_argument("--render-reps", type=int, default=15, help="timed sumSeries renders per side (N)")
    ap.add_argument("--schema", default="10s:6h", help="retentions of the one storage schema (stele, carbon)")
    ap.add_argument("--stele-cpu", type=int, default=1, help="core Stele is pinned to")
    ap.add_argument("--gen-cpu", type=int, default=0, help="core of this load generator (-1: unpinned)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds one run may take")
    args = ap.parse_args()
    if args.gen_cpu >= 0:
        os.sched_setaffinity(0, {args.gen_cpu})
    peers = [p for p in args.peers.split(",") if p]
    parts = args.parts.split(",")
    for p in peers:
        if p not in INGEST:
            ap.error("unknown peer %s (stele, victoria-metrics, carbon)" % p)
    if "stele" in peers and not os.access(STELE, os.X_OK):
        ap.error("STELE_BIN %s is not an executable (or leave stele out: --peers victoria-metrics,carbon)" % STELE)
    try:
        gp.ensure_packages(gp.PACKAGES + ((gp.VM_PACKAGE,) if "victoria-metrics" in peers else ()))
    except gp.PeerUnavailable as e:
        print("peers unavailable: %s" % e)
        return 1

    tmp = tempfile.mkdtemp(prefix="stele-graphite-bench-", dir=os.environ.get("BENCH_TMP", "/tmp"))
    results = {p: [] for p in peers}
    disk = {p: [] for p in peers}
    render_times = None
    try:
        if "ingest" in parts:
            end = int(time.time()) // STEP * STEP
            t = time.perf_counter()
            payload = ingest_payload(args.series, args.points, end)
            n = args.series * args.points
            print("ingest: %d series x %d points = %d points, %.1f MiB over 1 TCP connection, e.g. %r; built in %.1f s"
                  % (args.series, args.points, n, len(payload) / 2**20, payload[:payload.index(b"\n") + 1].decode(),
                     time.perf_counter() - t), flush=True)
            print("  stele on cpu %d, load generator on cpu %s, peers unpinned; schema %s" % (
                args.stele_cpu, args.gen_cpu, args.schema), flush=True)
            for rnd in range(1, args.rounds + 1):
                cells = []
                for p in peers:
                    r = INGEST[p](tmp, args, payload, n, end)
                    d = INGEST[p].last_disk
                    results[p].append(r)
                    disk[p].append(d / n)
                    extra = " (received %.0fk/s)" % (n / r["received_secs"] / 1e3) if "received_secs" in r else ""
                    cells.append("%s %.0fk pts/s%s cpu %.1fs %.1f B/pt" % (p, n / r["secs"] / 1e3, extra, r["cpu"], d / n))
                print("round %d: %s" % (rnd, " | ".join(cells)), flush=True)
        if "render" in parts and ("stele" in peers or "carbon" in peers):
            render_times = run_render(tmp, args, "stele" in peers)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    if "ingest" in parts:
        n = args.series * args.points
        print("\ningest: {:,} series x {} points = {:,} points over 1 connection; median (min-max) of {} rounds".format(
            args.series, args.points, n, args.rounds))
        row = "  {:<17} {:<10} {:<32} {:<32} {:<20} {}"
        print(row.format("peer", "clock", "points/s", "received points/s", "server cpu-s", "disk B/point"))
        for p in peers:
            recv = [n / r["received_secs"] for r in results[p] if "received_secs" in r]
            print(row.format(p, CLOCK[p], fmt_range([n / r["secs"] for r in results[p]]), fmt_range(recv),
                             fmt_range([r["cpu"] for r in results[p]], spec="{:.1f}"),
                             fmt_range(disk[p], spec="{:.1f}")))
        if "stele" in peers:
            s = med([n / r["secs"] for r in results["stele"]])
            for p in peers:
                if p == "stele":
                    continue
                o = med([n / r["secs"] for r in results[p]])
                line = "  stele/%s = %.2f (%s)" % (p, s / o, CLOCK[p])
                if p == "carbon":
                    line += "; stele/carbon received = %.2f" % (s / med([n / r["received_secs"] for r in results[p]]))
                print(line)
    if render_times:
        print("\nrender: sumSeries over %d series x 360 points, median (min-max) of %d requests" % (
            args.render_series, args.render_reps))
        for side, ts in sorted(render_times.items(), reverse=True):
            print("  %-13s %s ms" % (side, fmt_range(ts, 1000, "{:.1f}")))
        if "stele" in render_times:
            print("  stele/graphite-web time = %.3f (below 1: stele is faster)" % (
                med(render_times["stele"]) / med(render_times["graphite-web"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
