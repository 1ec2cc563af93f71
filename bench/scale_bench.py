#!/usr/bin/env python3
"""Control-plane scale: one `stele server`, --agents simulated agents in this one
process (bench/sim_agents.py: the real agent protocol — register, heartbeat, the
SSE command stream, batched and acknowledged status updates; launches are
answered `running`, nothing is executed), and --apps apps whose instances total
--instances, each with one dynamic port so ports are placed too.

Phases, each with the server's CPU seconds (/proc/PID/stat utime+stime), its
peak RSS in the phase (sampled VmRSS; VmHWM for the run), the busiest server
thread, and this harness's own CPU (to show whether it, not the server, is the
bottleneck):

  register  every agent registered (cpus 64, mem 256 GB, --ports ports each)
  deploy    first app POST -> every launch command received by the agents
            ("placed") -> every instance `running` as the server reports it
            (GET /v2/apps, tasksRunning summed; polled every --poll s)
  steady    --steady s with everything running: heartbeats at the interval the
            server asks for (--agent-timeout / 6: 5 s at the default 30 s),
            then a few seconds with heartbeats paused (the idle baseline:
            ticks, SSE keep-alives); server CPU per heartbeat = the steady
            phase's CPU minus the baseline's rate, over the heartbeats sent.

The anchor is Nomad's C1M (1,000,000 containers on 5,000 hosts in < 5 min with
5 servers: ~3,333 placements/s); ours is printed per second with one server.

    STELE_BIN=build/stele python3 bench/scale_bench.py                   # 1,000 agents, 100,000 instances
    STELE_BIN=build/stele python3 bench/scale_bench.py --agents 50 --apps 100 --instances 2000 --steady 5   # CI smoke

--timeout (600 s) bounds the whole run: past it the figures reached so far are
printed and it exits 1. --perf S records `perf record -g` of the server for S s
at the start of the deploy phase and prints the top symbols. Only 127.0.0.1;
the server it started is stopped by its pid and its temp dir removed.
"""
import argparse
import asyncio
import calendar
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sim_agents  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
C1M = (1_000_000, 5_000, 300.0, 5)  # containers, hosts, seconds, servers


def proc_cpu(pid):
    """utime+stime of a process (or /proc/PID/task/TID), seconds."""
    with open("/proc/%s/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_status_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def thread_cpu(pid):
    """{tid: (name, cpu seconds)} of the server's threads."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                name = f.read().strip()
            out[tid] = (name, proc_cpu("%d/task/%s" % (pid, tid)))
        except OSError:
            pass
    return out


def run_delay(pid):
    """Seconds the server's threads spent runnable but waiting for a CPU
    (/proc/PID/task/*/schedstat, field 2): the host's other load, not the server."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[1])
        except (OSError, IndexError, ValueError):
            pass
    return total / 1e9


def iso_seconds(s):
    """'2026-11-27T20:52:18.123Z' (the server's iso8601) -> epoch seconds."""
    return calendar.timegm(time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")) + int(s[20:23]) / 1000.0


def self_cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Phase:
    """Wall, server CPU, harness CPU and busiest server thread between start() and end()."""

    def __init__(self, name, pid):
        self.name, self.pid = name, pid
        self.t0 = time.time()
        self.cpu0, self.self0, self.threads0 = proc_cpu(pid), self_cpu(), thread_cpu(pid)
        self.delay0 = run_delay(pid)
        self.delay = 0.0
        self.peak_rss_kb = proc_status_kb(pid, "VmRSS")
        self.wall = self.cpu = self.self_cpu = None
        self.top_thread = ("", 0.0)

    def sample(self):
        self.peak_rss_kb = max(self.peak_rss_kb, proc_status_kb(self.pid, "VmRSS"))

    def end(self):
        self.sample()
        self.wall = time.time() - self.t0
        self.cpu = proc_cpu(self.pid) - self.cpu0
        self.self_cpu = self_cpu() - self.self0
        self.delay = run_delay(self.pid) - self.delay0
        busiest = ("", 0.0)
        for tid, (name, cpu) in thread_cpu(self.pid).items():
            d = cpu - self.threads0.get(tid, (name, 0.0))[1]
            if d > busiest[1]:
                busiest = ("%s/%s" % (name, tid), d)
        self.top_thread = busiest
        return self

    def line(self):
        wall = self.wall if self.wall is not None else time.time() - self.t0
        return ("%-9s %8.2f s wall | server %7.2f CPU-s (%3.0f%% of a core), peak RSS %6.0f MB, busiest thread %s %.2f CPU-s (%3.0f%%)"
                ", waiting for a CPU %.2f s (%3.0f%%) | harness %6.2f CPU-s (%3.0f%%)" % (
                    self.name, wall, self.cpu, 100 * self.cpu / max(wall, 1e-9), self.peak_rss_kb / 1024.0,
                    self.top_thread[0], self.top_thread[1], 100 * self.top_thread[1] / max(wall, 1e-9),
                    self.delay, 100 * self.delay / max(wall, 1e-9),
                    self.self_cpu, 100 * self.self_cpu / max(wall, 1e-9)))


class Bench:
    def __init__(self, args):
        self.args = args
        self.phases = []
        self.deadline = time.time() + args.timeout
        self.reached = {}
        self.perf = None

    def log(self, msg):
        print(msg, flush=True)

    def remaining(self):
        return max(0.0, self.deadline - time.time())

    def phase(self, name):
        p = Phase(name, self.server.proc.pid)
        self.phases.append(p)
        return p

    async def sampler(self):
        while True:
            for p in self.phases:
                if p.wall is None:
                    p.sample()
            await asyncio.sleep(0.5)

    async def running_count(self):
        """Instances `running` by the server's count, and the time GET /v2/apps took."""
        t0 = time.time()
        status, doc = await self.api.request("GET", "/v2/apps")
        took = time.time() - t0
        if status != 200:
            return -1, took
        return sum(a.get("tasksRunning", 0) for a in doc["apps"]), took

    async def register(self):
        a = self.args
        self.cluster = sim_agents.SimCluster(self.server.url, a.agents, cpus=a.cpus, mem=a.mem,
                                             ports=(20000, 20000 + a.ports - 1))
        p = self.phase("register")
        await asyncio.wait_for(self.cluster.start(), self.remaining())
        p.end()
        self.reached["registered"] = a.agents
        self.log("registered %d agents in %.2f s (%.0f/s)" % (a.agents, p.wall, a.agents / p.wall))

    async def create_apps(self, counts):
        """POST /v2/apps over --parallel keep-alive connections (the server
        handles one at a time; this hides the round trips)."""
        conns = [sim_agents.Conn(self.server.host, self.server.port) for _ in range(self.args.parallel)]
        queue = list(enumerate(counts))[::-1]
        self.created = 0
        self.create_times = []

        async def worker(conn):
            while queue:
                i, n = queue.pop()
                t0 = time.time()
                status, doc = await conn.request("POST", "/v2/apps", sim_agents.app_spec(i, n))
                self.create_times.append(time.time() - t0)
                if status not in (200, 201):
                    raise SystemExit("POST /v2/apps app%04d -> %d: %s" % (i, status, str(doc)[:500]))
                self.created += 1
        try:
            await asyncio.gather(*(worker(c) for c in conns))
        finally:
            for c in conns:
                c.close()

    async def deploy(self):
        a = self.args
        per, extra = divmod(a.instances, a.apps)
        counts = [per + (1 if i < extra else 0) for i in range(a.apps)]
        self.api = sim_agents.Conn(self.server.host, self.server.port)
        p = self.phase("deploy")
        if a.perf:
            self.start_perf(a.perf)
        creating = asyncio.ensure_future(self.create_apps(counts))
        t_created = t_placed = t_running = None
        polls = []
        last_log = 0.0
        while True:
            now = time.time() - p.t0
            if t_created is None and creating.done():
                creating.result()
                t_created = now
                self.log("  %d apps created at %.2f s (POST median %.0f ms, max %.0f ms)" % (
                    a.apps, now, 1000 * sorted(self.create_times)[len(self.create_times) // 2], 1000 * max(self.create_times)))
            if t_placed is None and self.cluster.launches >= a.instances:
                t_placed = now
                self.log("  all %d launch commands received at %.2f s" % (a.instances, now))
            running, took = await self.running_count()
            polls.append(took)
            self.reached.update(created=self.created, launched=self.cluster.launches, running=running)
            now = time.time() - p.t0
            if running >= a.instances and t_created is not None:
                t_running = now
                break
            if now - last_log >= a.progress:
                last_log = now
                self.log("  %6.1f s: %d/%d apps created, %d launches received, %d status updates acked, %d running "
                         "(server %.0f%% CPU so far, harness %.0f%%, GET /v2/apps %.0f ms)" % (
                             now, self.created, a.apps, self.cluster.launches, self.cluster.status_updates, running,
                             100 * (proc_cpu(p.pid) - p.cpu0) / now, 100 * (self_cpu() - p.self0) / now, 1000 * took))
            if self.remaining() <= 0:
                creating.cancel()
                p.end()
                raise TimeoutError("deploy")
            await asyncio.sleep(a.poll)
        p.end()
        self.t_placed, self.t_running = t_placed, t_running
        self.log("all %d instances running %.2f s after the first POST (created by %.2f s, placed by %.2f s; "
                 "GET /v2/apps median %.0f ms)" % (a.instances, t_running, t_created, t_placed or t_running,
                                                   1000 * sorted(polls)[len(polls) // 2]))

    async def steady(self):
        a = self.args
        if a.steady <= 0:
            return
        hb0 = self.cluster.heartbeats
        st0 = self.cluster.status_posts
        p = self.phase("steady")
        await asyncio.sleep(min(a.steady, self.remaining()))
        p.end()
        self.hb = self.cluster.heartbeats - hb0
        self.steady_status_posts = self.cluster.status_posts - st0
        # The idle baseline: no heartbeats for a third of the agent timeout.
        pause = min(max(2.0, a.steady / 3), a.agent_timeout / 3)
        self.cluster.heartbeats_paused = True
        hb1 = self.cluster.heartbeats
        await asyncio.sleep(0.5)  # heartbeats in flight
        b = self.phase("idle")
        await asyncio.sleep(min(pause, self.remaining()))
        b.end()
        self.idle_hb = self.cluster.heartbeats - hb1
        self.cluster.heartbeats_paused = False
        self.steady_phase, self.idle_phase = p, b

    def start_perf(self, seconds):
        if not shutil.which("perf"):
            self.log("  (perf not installed: no profile)")
            return
        self.perf_data = os.path.join(self.tmp, "perf.data")
        self.perf = subprocess.Popen(["perf", "record", "-g", "-F", "499", "-p", str(self.server.proc.pid),
                                      "-o", self.perf_data, "--", "sleep", str(seconds)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def perf_report(self):
        if not self.perf:
            return
        try:
            self.perf.wait(60)
        except subprocess.TimeoutExpired:
            self.perf.kill()
            self.perf.wait()
            return
        out = subprocess.run(["perf", "report", "-i", self.perf_data, "--stdio", "--no-children", "-g", "none",
                              "--percent-limit", "1.5", "--sort", "symbol"],
                             capture_output=True, text=True, timeout=300).stdout
        lines = [l for l in out.splitlines() if l.strip() and not l.startswith("#")]
        self.log("server profile, first %d s of the deploy phase (perf record -g, self time):" % self.args.perf)
        for l in lines[:25]:
            self.log("  " + l.strip()[:160])

    def report(self, ok):
        a = self.args
        pid = self.server.proc.pid
        self.log("")
        self.log("--- scale_bench: %d agents, %d apps, %d instances (%s) ---" % (
            a.agents, a.apps, a.instances, "complete" if ok else "INCOMPLETE, reached %s" % self.reached))
        self.log("load average before: %s, after: %s" % (self.load0, " ".join(open("/proc/loadavg").read().split()[:3])))
        for p in self.phases:
            if p.wall is None:
                p.end()
            self.log(p.line())
        total_cpu = proc_cpu(pid)
        self.log("server whole run: %.2f CPU-s, peak RSS (VmHWM) %.0f MB, RSS now %.0f MB" % (
            total_cpu, proc_status_kb(pid, "VmHWM") / 1024.0, proc_status_kb(pid, "VmRSS") / 1024.0))
        if getattr(self, "t_running", None):
            rate = a.instances / self.t_running
            c_rate = C1M[0] / C1M[2]
            deploy = next(p for p in self.phases if p.name == "deploy")
            self.log("server CPU per instance placed and started: %.2f ms (%.0f instances per server CPU-second); "
                     "wall per instance %.2f ms" % (1000 * deploy.cpu / a.instances, a.instances / max(deploy.cpu, 1e-9),
                                                   1000 * self.t_running / a.instances))
            self.log("placed and running: %d instances in %.2f s = %.0f instances/s with 1 server "
                     "(%.1f per agent, %.0f agents)" % (a.instances, self.t_running, rate, a.instances / a.agents, a.agents))
            self.log("anchor, Nomad C1M (published, not this run): %d containers on %d hosts in < %d s with %d servers "
                     "= %.0f placements/s (%.0f per server), %d per host; ours %.0f/s with 1 server = %.2f x C1M's "
                     "cluster rate, %.2f x its per-server rate" % (
                         C1M[0], C1M[1], C1M[2], C1M[3], c_rate, c_rate / C1M[3], C1M[0] // C1M[1],
                         rate, rate / c_rate, rate / (c_rate / C1M[3])))
        if getattr(self, "steady_phase", None):
            s, b = self.steady_phase, self.idle_phase
            hb_s = self.cluster.agents[0].heartbeat_s
            idle_rate = b.cpu / b.wall
            marginal = max(0.0, s.cpu - idle_rate * s.wall)
            self.log("steady: %d heartbeats in %.1f s (%.0f/s, every %.1f s per agent), %d status posts; "
                     "server %.3f CPU-s = %.1f%% of a core; idle baseline (heartbeats paused %.1f s, %d sent) %.1f%% of a core" % (
                         self.hb, s.wall, self.hb / s.wall, hb_s, self.steady_status_posts, s.cpu,
                         100 * s.cpu / s.wall, b.wall, self.idle_hb, 100 * idle_rate))
            if self.hb:
                per_hb = 1e6 * s.cpu / self.hb
                per_hb_marginal = 1e6 * marginal / self.hb
                self.log("heartbeat cost: %.0f us server CPU per heartbeat all-in (%.0f us above the idle baseline); "
                         "per agent at the %.1f s interval: %.0f us CPU/s all-in (%.0f us marginal) -> one core serves "
                         "~%.0f agents by heartbeat cost alone" % (
                             per_hb, per_hb_marginal, hb_s, per_hb / hb_s, per_hb_marginal / hb_s,
                             1e6 * hb_s / per_hb_marginal if per_hb_marginal > 0 else float("inf")))

    async def delivery(self):
        """Launch delivery: the task's stagedAt (the server placed it and
        queued the launch) -> its launch command read by the agent. Fetched
        after the figures above: GET /api/v1/tasks of every task is large."""
        seen = self.cluster.launched_at
        if not seen or self.remaining() <= 0:
            return
        t0 = time.time()
        status, doc = await asyncio.wait_for(self.api.request("GET", "/api/v1/tasks"), max(1.0, self.remaining()))
        took = time.time() - t0
        if status != 200:
            return
        lat = sorted(seen[t["id"]] - iso_seconds(t["stagedAt"]) for t in doc["tasks"] if t["id"] in seen and t.get("stagedAt"))
        if not lat:
            return
        q = lambda f: lat[min(len(lat) - 1, int(f * len(lat)))]  # noqa: E731
        self.log("launch delivery (stagedAt -> command read by the agent), %d tasks: median %.0f ms, p90 %.0f ms, "
                 "p99 %.0f ms, max %.1f s; %d (%.1f%%) took > 5 s (GET /api/v1/tasks: %.1f s)" % (
                     len(lat), 1000 * q(0.5), 1000 * q(0.9), 1000 * q(0.99), lat[-1],
                     sum(1 for x in lat if x > 5), 100.0 * sum(1 for x in lat if x > 5) / len(lat), took))

    async def run(self):
        a = self.args
        self.load0 = " ".join(open("/proc/loadavg").read().split()[:3])
        self.tmp = tempfile.mkdtemp(prefix="stele-scale-")
        self.server = sim_agents.Server(agent_timeout=a.agent_timeout, deploy_timeout=max(600, int(a.timeout)))
        self.server.host, self.server.port = "127.0.0.1", self.server.port
        self.log("stele server pid %d at %s (%s); load average %s" % (self.server.proc.pid, self.server.url,
                                                                     sim_agents.stelelib.STELE, self.load0))
        sampler = asyncio.ensure_future(self.sampler())
        ok = False
        try:
            await self.register()
            await self.deploy()
            await self.steady()
            ok = True
        except (asyncio.TimeoutError, TimeoutError):
            self.log("timed out after %d s" % a.timeout)
        finally:
            sampler.cancel()
            if self.server.proc.poll() is None:
                self.perf_report()
                self.report(ok)
                if getattr(self, "api", None):
                    try:
                        await self.delivery()
                    except (asyncio.TimeoutError, OSError, ConnectionError) as e:
                        self.log("launch delivery: not measured (%s)" % e)
            else:
                self.log("the server exited %s; its log: %s" % (self.server.proc.returncode, self.server.log_path))
            if hasattr(self, "cluster"):
                try:
                    await asyncio.wait_for(self.cluster.stop(), 30)
                except asyncio.TimeoutError:
                    pass
            if getattr(self, "api", None):
                self.api.close()
            if self.perf and self.perf.poll() is None:
                self.perf.kill()
                self.perf.wait()
            self.server.stop(keep_tmp=a.keep)
            if a.keep:
                self.log("kept %s and %s" % (self.server.tmp, self.tmp))
            else:
                shutil.rmtree(self.tmp, ignore_errors=True)
        return ok


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--agents", type=int, default=1000)
    p.add_argument("--apps", type=int, default=1000)
    p.add_argument("--instances", type=int, default=100000, help="total over all apps")
    p.add_argument("--cpus", type=float, default=64)
    p.add_argument("--mem", type=float, default=262144, help="MB per agent")
    p.add_argument("--ports", type=int, default=200, help="ports per agent (20000..)")
    p.add_argument("--parallel", type=int, default=4, help="concurrent app POSTs")
    p.add_argument("--steady", type=float, default=30, help="seconds of the steady phase (0: none)")
    p.add_argument("--agent-timeout", type=float, default=30, help="the server's (default 30: heartbeats every 5 s)")
    p.add_argument("--poll", type=float, default=1.0, help="seconds between GET /v2/apps in the deploy phase")
    p.add_argument("--progress", type=float, default=10, help="seconds between progress lines")
    p.add_argument("--timeout", type=float, default=600, help="bound on the whole run, seconds")
    p.add_argument("--perf", type=int, default=0, help="perf record the server for S s from the first POST")
    p.add_argument("--keep", action="store_true", help="keep the temp dirs (server log, perf.data)")
    args = p.parse_args()
    if args.apps > args.instances or args.ports * args.agents < args.instances:
        p.error("need apps <= instances <= agents * ports")
    ok = asyncio.run(Bench(args).run())
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
