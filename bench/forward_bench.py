#!/usr/bin/env python3
"""Forward ingest: records acked (= durable) per second (design.md's forward row).

Stele, rsyslog and npm's FluentServer are fed the SAME log lines in the same
run, interleaved round by round (design.md "Benchmarks"):

  stele        a real `stele server` (its ForwardServer + LogStore, and the rest of
               the server idling alongside), data in a fresh temp dir per round,
               pinned with `taskset -c <--stele-cpu>` (the whole process: io
               thread, group-commit writer, its fdatasync helper). With --server
               bench: build/forward_bench instead, the same two classes and
               nothing else. PackedForward requests with a chunk id each; the
               clock stops at the last ack, and an ack leaves only once the
               request's records are written and fdatasync'ed. Afterwards the
               store must hold sequences 1..N exactly (checked).
  rsyslog      a private `rsyslogd -n` (imtcp on a loopback port -> one omfile
               action, template %rawmsg%, no imuxsock), the same lines
               newline-terminated. rsyslog has no acks and does not fsync: the
               clock stops when its output file holds every byte.
  fluentserver @fluent-org/logger's FluentServer under node (forward_bench_fluent.js),
               the same PackedForward requests; it acks each request once it has
               decoded it and stores nothing.

The load generator (this process) pre-encodes everything before the clock
starts, runs on --gen-cpu, splits the lines over K connections (--conns) and
keeps up to --window requests unacked per connection. Events/s and MiB/s (of
the log lines' bytes, 94 B each by default, as in peers.md) run from the first
byte sent to the last ack (rsyslog: last byte in its file). Peers run as they
do by default (unpinned) unless --pin-peers.

Usage: STELE_BIN=build/stele python3 bench/forward_bench.py [--rounds 5] [--events 2000000]
Traffic stays on 127.0.0.1; every process started here is stopped by its pid.
"""

import argparse
import base64
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import json
import urllib.request

from benchlib import cpu_seconds, taskset

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, ".."))
STELE = os.environ.get("STELE_BIN", os.path.join(ROOT, "build", "stele"))
BENCH_BIN = os.environ.get("FORWARD_BENCH_BIN", os.path.join(os.path.dirname(STELE), "forward_bench"))
NODE_MODULES = os.path.join(ROOT, "tests", "integration", "node_modules")
FLUENT_JS = os.path.join(HERE, "forward_bench_fluent.js")
TAG = "bench.app"
MiB = 1024 * 1024


# ---------- the workload ----------

def make_lines(n, width, seed=42):
    """n varied syslog-style lines of exactly `width` bytes including the newline."""
    import random
    rnd = random.Random(seed)
    months = ["Nov", "Dec"]
    hosts = ["web-%d" % i for i in range(1, 9)] + ["db-1", "db-2", "cache-1"]
    apps = [("shop", 2211), ("api", 3120), ("auth", 977), ("worker", 4410), ("nginx", 88)]
    methods = ["GET"] * 6 + ["POST"] * 2 + ["PUT", "DELETE"]
    paths = ["/api/items/%d", "/api/cart/%d", "/api/users/%d/orders", "/static/app.%x.js", "/login?next=/c/%d",
             "/healthz", "/api/search?q=item%d"]
    statuses = [200] * 14 + [201, 204, 301, 304, 400, 401, 403, 404, 404, 500, 502, 503]
    out = []
    for i in range(n):
        host = hosts[rnd.randrange(len(hosts))]
        app, pid = apps[rnd.randrange(len(apps))]
        p = paths[rnd.randrange(len(paths))]
        path = p % rnd.randrange(1, 99999) if "%" in p else p
        t = i // 1000
        head = "%s %2d %02d:%02d:%02d %s %s[%d]: %s %s %d %dB %dms u=u%d" % (
            months[(t // 86400) % 2], 1 + (t // 3600) % 28, (t // 3600) % 24, (t // 60) % 60, t % 60, host, app,
            pid, methods[rnd.randrange(len(methods))], path, statuses[rnd.randrange(len(statuses))],
            rnd.randrange(0, 65536), rnd.randrange(0, 2000), rnd.randrange(1, 50000))
        body = width - 1
        if len(head) + 5 < body:
            head += " req=" + ("%032x" % rnd.getrandbits(128))[: body - len(head) - 5]
        out.append(head[:body].ljust(body) + "\n")
    return out


def str_header(n):
    if n < 32:
        return bytes([0xA0 | n])
    if n < 256:
        return bytes([0xD9, n])
    if n < 65536:
        return b"\xda" + struct.pack(">H", n)
    return b"\xdb" + struct.pack(">I", n)


def mp_str(s):
    b = s.encode()
    return str_header(len(b)) + b


def packed_forward(tag, lines, first_time_ns, chunk):
    """[tag, bin(entries of [EventTime, {"log": line}]), {"chunk": id, "size": n}]"""
    parts = []
    key = b"\x81\xa3log"
    for i, line in enumerate(lines):
        t = first_time_ns + i * 1000
        b = line[:-1].encode()
        parts.append(b"\x92\xd7\x00" + struct.pack(">II", t // 1_000_000_000, t % 1_000_000_000) + key +
                     str_header(len(b)) + b)
    entries = b"".join(parts)
    opts = b"\x82" + mp_str("chunk") + mp_str(chunk) + mp_str("size") + b"\xce" + struct.pack(">I", len(lines))
    return b"\x93" + mp_str(tag) + b"\xc6" + struct.pack(">I", len(entries)) + entries + opts


class Request:
    __slots__ = ("data", "chunk", "events")

    def __init__(self, data, chunk, events):
        self.data, self.chunk, self.events = data, chunk, events


def split(items, k):
    """k contiguous shares, as even as possible."""
    n = len(items)
    return [items[i * n // k:(i + 1) * n // k] for i in range(k)]


def forward_requests(lines, k, batch):
    """Per connection: its PackedForward requests (chunk ids unique in the run)."""
    base_ns = 1_780_000_000 * 1_000_000_000
    out = []
    serial = 0
    for c, share in enumerate(split(lines, k)):
        reqs = []
        for i in range(0, len(share), batch):
            chunk = base64.b64encode(struct.pack(">IIQ", os.getpid(), c, serial)).decode()
            serial += 1
            part = share[i:i + batch]
            reqs.append(Request(packed_forward(TAG, part, base_ns + serial * 10_000_000, chunk), chunk, len(part)))
        out.append(reqs)
    return out


# ---------- processes ----------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("process exited with %s before listening on %d" % (proc.returncode, port))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("nothing listens on 127.0.0.1:%d after %.0f s" % (port, timeout))


def stop(proc, timeout=20.0):
    """SIGTERM the process we started (by pid), SIGKILL it if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


# ---------- senders ----------

class AckReader:
    """Parses {"ack": chunk} answers (msgpack) from a byte stream."""

    def __init__(self):
        self.buf = b""

    def feed(self, data):
        self.buf += data
        out = []
        while True:
            b = self.buf
            if len(b) < 6:
                break
            if b[0] != 0x81 or b[1:5] != b"\xa3ack":
                raise RuntimeError("unexpected answer from server: %r" % b[:32])
            h = b[5]
            if 0xA0 <= h <= 0xBF:
                n, off = h & 0x1F, 6
            elif h == 0xD9 and len(b) >= 7:
                n, off = b[6], 7
            elif h == 0xDA and len(b) >= 8:
                n, off = struct.unpack(">H", b[6:8])[0], 8
            elif h in (0xD9, 0xDA):
                break
            else:
                raise RuntimeError("unexpected ack encoding: %r" % b[:32])
            if len(b) < off + n:
                break
            out.append(b[off:off + n].decode())
            self.buf = b[off + n:]
        return out


def forward_conn(sock, reqs, window, barrier, result, idx):
    """Sends reqs keeping `window` unacked; checks every ack arrives, in order."""
    barrier.wait()
    pending = []
    reader = AckReader()
    i = acked = 0
    sock.settimeout(120)
    try:
        while i < len(reqs) or pending:
            while i < len(reqs) and len(pending) < window:
                sock.sendall(reqs[i].data)
                pending.append(reqs[i].chunk)
                i += 1
            data = sock.recv(65536)
            if not data:
                raise RuntimeError("server closed the connection after %d acks" % acked)
            for chunk in reader.feed(data):
                if chunk != pending[0]:
                    raise RuntimeError("ack %s out of order (expected %s)" % (chunk, pending[0]))
                pending.pop(0)
                acked += 1
        result[idx] = (time.perf_counter(), None)
    except Exception as e:  # reported by the caller
        result[idx] = (time.perf_counter(), e)


def run_forward(port, conn_reqs, window):
    """Sends every connection's requests; returns seconds from first byte to last ack."""
    socks = []
    for _ in conn_reqs:
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        socks.append(s)
    barrier = threading.Barrier(len(socks) + 1)
    result = [None] * len(socks)
    threads = [threading.Thread(target=forward_conn, args=(s, r, window, barrier, result, i))
               for i, (s, r) in enumerate(zip(socks, conn_reqs))]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join(timeout=600)
    for s in socks:
        s.close()
    errors = [r[1] for r in result if r is None or r[1] is not None]
    if any(r is None for r in result):
        raise RuntimeError("a sender did not finish in 600 s")
    if errors:
        raise RuntimeError(str(errors[0]))
    return max(r[0] for r in result) - t0


def stream_conn(sock, data, barrier):
    barrier.wait()
    view = memoryview(data)
    for i in range(0, len(view), 4 * MiB):
        sock.sendall(view[i:i + 4 * MiB])


def run_lines(port, conn_data, out_path, total_bytes, timeout=300.0):
    """Streams lines over K connections; seconds until out_path holds total_bytes."""
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in conn_data]
    barrier = threading.Barrier(len(socks) + 1)
    threads = [threading.Thread(target=stream_conn, args=(s, d, barrier)) for s, d in zip(socks, conn_data)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    size = 0
    while time.perf_counter() - t0 < timeout:
        try:
            size = os.stat(out_path).st_size
        except FileNotFoundError:
            size = 0
        if size >= total_bytes:
            break
        time.sleep(0.002)
    t1 = time.perf_counter()
    for t in threads:
        t.join(timeout=60)
    for s in socks:
        s.close()
    if size < total_bytes:
        raise RuntimeError("rsyslog wrote %d of %d bytes in %.0f s" % (size, total_bytes, timeout))
    return t1 - t0


# ---------- peers ----------

class Stele:
    """The Stele side: forward_bench (bench-only server: the real ForwardServer +
    LogStore, nothing else) or, with --server stele, a whole `stele server`."""
    name = "stele"

    def __init__(self, tmp, cpu, server, bench_bin):
        self.tmp, self.cpu, self.server, self.bench_bin = tmp, cpu, server, bench_bin
        self.last_stats = {}

    def run(self, conn_reqs, window, events):
        return (self.run_stele if self.server == "stele" else self.run_bench)(conn_reqs, window, events)

    def run_bench(self, conn_reqs, window, events):
        data = tempfile.mkdtemp(prefix="stele-", dir=self.tmp)
        proc = subprocess.Popen(taskset(self.cpu) + [self.bench_bin, "--dir", os.path.join(data, "logs")],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = proc.stdout.readline()
            if not line.startswith("listening "):
                raise RuntimeError("forward_bench did not start: " + line + proc.stderr.read()[-500:])
            port = int(line.split()[1].rsplit(":", 1)[1])
            cpu0 = cpu_seconds(proc.pid)
            secs = run_forward(port, conn_reqs, window)
            cpu = cpu_seconds(proc.pid) - cpu0
            os.kill(proc.pid, signal.SIGTERM)
            out, err = proc.communicate(timeout=60)
            self.last_stats = json.loads(out.strip().splitlines()[-1])
            if self.last_stats["records"] != events or self.last_stats["last_seq"] != events:
                raise RuntimeError("forward_bench stored %s: expected %d records" % (self.last_stats, events))
            return secs, cpu
        finally:
            stop(proc)
            shutil.rmtree(data, ignore_errors=True)

    def run_stele(self, conn_reqs, window, events):
        data = tempfile.mkdtemp(prefix="stele-", dir=self.tmp)
        api, fwd = free_port(), free_port()
        log = open(os.path.join(data, "server.log"), "w")
        proc = subprocess.Popen(taskset(self.cpu) + [STELE, "server", "--router-listen", "off", "--data-dir", os.path.join(data, "d"),
                                "--listen", "127.0.0.1:%d" % api, "--forward-listen", "127.0.0.1:%d" % fwd],
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_port(fwd, proc)
            wait_port(api, proc)
            cpu0 = cpu_seconds(proc.pid)
            secs = run_forward(fwd, conn_reqs, window)
            cpu = cpu_seconds(proc.pid) - cpu0
            # Every acked record is queryable, each once: sequences 1..events (a fresh store).
            url = "http://127.0.0.1:%d/api/v1/logs?tag=%s&limit=2&after=%d" % (api, TAG, events - 1)
            with urllib.request.urlopen(url, timeout=30) as r:
                last = [json.loads(l)["seq"] for l in r.read().decode().splitlines()]
            if last != [events]:
                raise RuntimeError("stele's last sequences %s after %d acked events" % (last, events))
            return secs, cpu
        finally:
            stop(proc)
            log.close()
            shutil.rmtree(data, ignore_errors=True)


class Rsyslog:
    name = "rsyslog"

    def __init__(self, tmp, cpu, binary):
        self.tmp, self.cpu, self.binary = tmp, cpu, binary

    def run(self, conn_data, total_bytes):
        work = tempfile.mkdtemp(prefix="rsyslog-", dir=self.tmp)
        port = free_port()
        out = os.path.join(work, "out.log")
        conf = os.path.join(work, "rsyslog.conf")
        with open(conf, "w") as f:
            f.write('global(workDirectory="%s")\n' % work)
            f.write('module(load="imtcp")\n')
            f.write('template(name="raw" type="string" string="%rawmsg%\\n")\n')
            f.write('input(type="imtcp" address="127.0.0.1" port="%d")\n' % port)
            f.write('*.* action(type="omfile" file="%s" template="raw")\n' % out)
        log = open(os.path.join(work, "rsyslogd.log"), "w")
        proc = subprocess.Popen(taskset(self.cpu) + [self.binary, "-n", "-f", conf, "-i", os.path.join(work, "pid")],
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_port(port, proc)
            cpu0 = cpu_seconds(proc.pid)
            secs = run_lines(port, conn_data, out, total_bytes)
            cpu = cpu_seconds(proc.pid) - cpu0
            with open(out, "rb") as f:  # the raw template: the lines come out as they went in
                first = f.readline()
            if first not in [d[:d.index(b"\n") + 1] for d in conn_data]:
                raise RuntimeError("rsyslog's output does not start with a line sent: %r" % first[:100])
            return secs, cpu
        finally:
            stop(proc)
            log.close()
            shutil.rmtree(work, ignore_errors=True)


class FluentServer:
    name = "fluentserver"

    def __init__(self, tmp, cpu):
        self.tmp, self.cpu = tmp, cpu

    def run(self, conn_reqs, window, events):
        proc = subprocess.Popen(taskset(self.cpu) + ["node", FLUENT_JS, NODE_MODULES], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError("FluentServer did not start: " + proc.stderr.read()[-500:])
            port = json.loads(line)["port"]
            wait_port(port, proc)
            cpu0 = cpu_seconds(proc.pid)
            secs = run_forward(port, conn_reqs, window)
            cpu = cpu_seconds(proc.pid) - cpu0
            os.kill(proc.pid, signal.SIGUSR2)  # ask for its entry count
            got = json.loads(proc.stdout.readline())["entries"]
            if got != events:
                raise RuntimeError("FluentServer decoded %d of %d events" % (got, events))
            return secs, cpu
        finally:
            stop(proc)


def ensure_rsyslogd():
    path = shutil.which("rsyslogd") or ("/usr/sbin/rsyslogd" if os.path.exists("/usr/sbin/rsyslogd") else None)
    if path:
        return path
    print("rsyslogd missing: apt-get install rsyslog (services kept from starting by policy-rc.d)", flush=True)
    policy = "/usr/sbin/policy-rc.d"
    created = False
    if not os.path.exists(policy):
        with open(policy, "w") as f:
            f.write("#!/bin/sh\nexit 101\n")
        os.chmod(policy, 0o755)
        created = True
    try:
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "rsyslog"], check=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"), stdout=subprocess.DEVNULL)
    finally:
        if created:
            os.unlink(policy)
    return shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"


# ---------- report ----------

def fmt_range(vals, scale=1.0, spec="%.0f"):
    vals = [v * scale for v in vals]
    return (spec + " (" + spec + "-" + spec + ")") % (statistics.median(vals), min(vals), max(vals))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--events", type=int, default=2_000_000, help="log lines per run")
    ap.add_argument("--line-bytes", type=int, default=94, help="bytes per line including the newline")
    ap.add_argument("--batch", type=int, default=5000, help="events per PackedForward request")
    ap.add_argument("--conns", default="1,4", help="connection counts to run, e.g. 1,4")
    ap.add_argument("--window", type=int, default=4, help="unacked requests per connection")
    ap.add_argument("--peers", default="stele,rsyslog,fluentserver")
    ap.add_argument("--stele-cpu", type=int, default=1, help="core Stele is pinned to")
    ap.add_argument("--gen-cpu", type=int, default=0, help="core of this load generator (-1: unpinned)")
    ap.add_argument("--server", choices=["stele", "bench"], default="stele",
                    help="stele: a whole `stele server`; bench: build/forward_bench (ForwardServer + LogStore only)")
    ap.add_argument("--pin-peers", action="store_true", help="pin rsyslog and FluentServer to --stele-cpu too")
    args = ap.parse_args()
    if args.gen_cpu >= 0:
        os.sched_setaffinity(0, {args.gen_cpu})
    peers = args.peers.split(",")
    conns = [int(c) for c in args.conns.split(",")]
    peer_cpu = args.stele_cpu if args.pin_peers else None

    tmp = tempfile.mkdtemp(prefix="stele-forward-bench-", dir=os.environ.get("BENCH_TMP", "/tmp"))
    t = time.perf_counter()
    lines = make_lines(args.events, args.line_bytes)
    line_bytes = sum(len(l) for l in lines)
    print("workload: %d lines of %d B (%.1f MiB), e.g. %r" % (len(lines), args.line_bytes, line_bytes / MiB,
                                                            lines[0]), flush=True)
    work = {}
    for k in conns:
        reqs = forward_requests(lines, k, args.batch)
        data = ["".join(share).encode() for share in split(lines, k)]
        wire = sum(len(r.data) for rs in reqs for r in rs)
        work[k] = (reqs, data)
        print("  K=%d: %d PackedForward requests of <=%d events (%.1f MiB on the wire), window %d" % (
            k, sum(len(r) for r in reqs), args.batch, wire / MiB, args.window), flush=True)
    print("  encoded in %.1f s; stele (%s) on cpu %d, load generator on cpu %s, peers %s" % (
        time.perf_counter() - t, "stele server" if args.server == "stele" else "forward_bench", args.stele_cpu,
        args.gen_cpu, "on cpu %d" % peer_cpu if args.pin_peers else "unpinned"), flush=True)

    runners = {}
    if "stele" in peers:
        runners["stele"] = Stele(tmp, args.stele_cpu, args.server, BENCH_BIN)
    if "rsyslog" in peers:
        runners["rsyslog"] = Rsyslog(tmp, peer_cpu, ensure_rsyslogd())
    if "fluentserver" in peers:
        runners["fluentserver"] = FluentServer(tmp, peer_cpu)

    results = {(p, k): [] for p in runners for k in conns}  # (events/s, cpu-s)
    try:
        for rnd in range(1, args.rounds + 1):
            for k in conns:
                reqs, data = work[k]
                cells = []
                for p, r in runners.items():
                    if p == "rsyslog":
                        secs, cpu = r.run(data, line_bytes)
                    else:
                        secs, cpu = r.run(reqs, args.window, len(lines))
                    results[(p, k)].append((len(lines) / secs, cpu))
                    extra = ""
                    if p == "stele" and r.last_stats:
                        extra = " (%d requests in %d group commits, %d wal fdatasyncs)" % (
                            r.last_stats["requests"], r.last_stats["batches"], r.last_stats["syncs"])
                    cells.append("%s %.0fk ev/s %.0f MiB/s cpu %.2fs%s" % (p, len(lines) / secs / 1e3,
                                                                          line_bytes / secs / MiB, cpu, extra))
                print("round %d K=%d: %s" % (rnd, k, " | ".join(cells)), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print("\nmedian (min-max) over %d rounds; MiB/s of the %d-byte lines; cpu = the server's CPU seconds per run"
          % (args.rounds, args.line_bytes))
    for k in conns:
        for p in runners:
            evs = [e for e, _ in results[(p, k)]]
            cpus = [c for _, c in results[(p, k)]]
            print("  K=%d %-13s %s events/s  %s MiB/s  cpu %s s  (%s)" % (
                k, p, fmt_range(evs), fmt_range(evs, args.line_bytes / MiB, "%.1f"), fmt_range(cpus, 1, "%.2f"),
                "acked = fdatasync'ed" if p == "stele" else "no acks, no fsync" if p == "rsyslog"
                else "acked on decode, not stored"))
        if "stele" in runners:
            s = statistics.median(e for e, _ in results[("stele", k)])
            for p in runners:
                if p != "stele":
                    o = statistics.median(e for e, _ in results[(p, k)])
                    print("  K=%d stele/%s = %.2f" % (k, p, s / o))
            print("  K=%d stele %s target >= 1,000,000 events/s on one core" % (
                k, "meets" if s >= 1e6 else "misses"))


if __name__ == "__main__":
    sys.exit(main())
