#!/usr/bin/env python3
"""Simulated agents: N agents in one process speaking the real agent protocol
(register, heartbeat, the SSE command stream, acknowledged status updates) to
a real `stele server`, so the control plane and the dashboard can be measured
at a scale this machine could not run as real processes. A launch command is
answered with `running` (a made-up pid, the assigned ports), a kill with
`killed`; nothing is executed. Traffic only to the server's loopback address.

    STELE_BIN=build/stele python3 bench/sim_agents.py --agents 50 --apps 500 --instances 10
    python3 bench/sim_agents.py --server http://127.0.0.1:7070 --agents 100 --keep

Without --server it starts its own `stele server` (data in a temp dir). Prints the
time to register every agent, to create the apps and until every instance runs,
and the server's RSS. Its exported-port probes are off (--probe-interval 0:
nothing listens on the simulated ports); --apps-first creates the apps before
the agents register (much faster: see bench/README.md "dashboard_bench"). --keep leaves everything up until Ctrl-C (for the
dashboard's benchmark); `SimCluster` is importable for tests and benches.
"""
import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
import stelelib  # noqa: E402


class Conn:
    """One keep-alive HTTP/1.1 connection (JSON bodies, Content-Length answers)."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.reader = self.writer = None
        self.lock = asyncio.Lock()  # one request at a time on the connection

    async def request(self, method, path, body=None):
        async with self.lock:
            return await self._request(method, path, body)

    async def _request(self, method, path, body):
        for attempt in range(2):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            data = b"" if body is None else json.dumps(body).encode()
            head = "%s %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (
                method, path, self.host, self.port, len(data))
            try:
                self.writer.write(head.encode() + data)
                await self.writer.drain()
                status_line = await self.reader.readline()
                if not status_line:
                    raise ConnectionError("closed")
                status = int(status_line.split()[1])
                length, chunked = 0, False
                while True:
                    line = await self.reader.readline()
                    if line in (b"\r\n", b""):
                        break
                    k, _, v = line.decode().partition(":")
                    if k.lower() == "content-length":
                        length = int(v.strip())
                    if k.lower() == "transfer-encoding" and "chunked" in v.lower():
                        chunked = True
                if chunked:
                    payload = b""
                    while True:
                        size = int((await self.reader.readline()).strip(), 16)
                        chunk = await self.reader.readexactly(size + 2)
                        if size == 0:
                            break
                        payload += chunk[:-2]
                else:
                    payload = await self.reader.readexactly(length) if length else b""
                return status, (json.loads(payload) if payload else None)
            except (ConnectionError, asyncio.IncompleteReadError, OSError):
                self.close()
                if attempt == 1:
                    raise
        return 0, None

    def close(self):
        if self.writer:
            self.writer.close()
        self.reader = self.writer = None


class SimAgent:
    def __init__(self, cluster, index):
        self.cluster = cluster
        self.id = "sim-%04d" % index
        self.hostname = "sim%04d" % index
        self.tasks = {}        # task id -> status update (the last sent)
        self.pending = []      # updates not yet acknowledged
        self.wake = asyncio.Event()
        self.conn = Conn(cluster.host, cluster.port)
        self.registered = asyncio.Event()
        self.heartbeat_s = 1.0

    def registration(self):
        return {"id": self.id, "hostname": self.hostname, "address": "127.0.0.1",
                "resources": {"cpus": self.cluster.cpus, "mem": self.cluster.mem, "disk": 100000},
                "ports": [[self.cluster.port_begin, self.cluster.port_end]], "attributes": {"sim": "1"},
                "subscriptions": [], "tasks": list(self.tasks.values())}

    async def run(self):
        while not self.cluster.stopping:
            status, ans = await self.conn.request("POST", "/api/v1/agent/register", self.registration())
            if status != 200:
                await asyncio.sleep(0.5)
                continue
            self.heartbeat_s = max(0.2, ans.get("heartbeatIntervalMs", 1000) / 1000.0)
            for tid in ans.get("kill", []):
                self.finish(tid, "killed")
            self.registered.set()
            await asyncio.gather(self.heartbeats(), self.commands(), self.statuses())

    async def heartbeats(self):
        while not self.cluster.stopping:
            if self.cluster.heartbeats_paused:  # a bench's baseline without heartbeats (keep it < the agent timeout)
                await asyncio.sleep(0.2)
                continue
            status, _ = await self.conn.request("POST", "/api/v1/agent/heartbeat", {"id": self.id})
            if status == 404:
                return
            self.cluster.heartbeats += 1
            await asyncio.sleep(self.heartbeat_s)

    async def commands(self):
        reader, writer = await asyncio.open_connection(self.cluster.host, self.cluster.port)
        path = "/api/v1/agent/commands?id=" + urllib.parse.quote(self.id)
        writer.write(("GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n" % (path, self.cluster.host)).encode())
        await writer.drain()
        event, data = "", []
        try:
            while not self.cluster.stopping:
                line = await reader.readline()
                if not line:
                    return
                text = line.decode(errors="replace").rstrip("\r\n")
                if text.startswith("event:"):
                    event = text[6:].strip()
                elif text.startswith("data:"):
                    data.append(text[5:].strip())
                elif text == "" and data:
                    if event == "command":
                        self.command(json.loads("\n".join(data)))
                    event, data = "", []
        finally:
            writer.close()

    def command(self, c):
        if c.get("type") == "launch":
            t = c["task"]
            tid = t.get("id") or t.get("taskId")
            self.cluster.launches += 1
            self.cluster.launched_at[tid] = time.time()
            self.send({"taskId": tid, "state": "running", "pid": 100000 + self.cluster.launches,
                       "startedMs": int(time.time() * 1000)})
        elif c.get("type") == "kill":
            self.finish(c.get("taskId"), "killed")

    def finish(self, tid, state):
        self.tasks.pop(tid, None)
        self.pending.append({"taskId": tid, "state": state, "exitCode": 143 if state == "killed" else 0})
        self.wake.set()

    def send(self, update):
        self.tasks[update["taskId"]] = update
        self.pending.append(update)
        self.wake.set()

    async def statuses(self):
        while not self.cluster.stopping:
            if not self.pending:
                self.wake.clear()
                try:
                    await asyncio.wait_for(self.wake.wait(), 1.0)
                except asyncio.TimeoutError:
                    pass
                continue
            # A moment for more to gather: each POST costs the server a cluster tick.
            await asyncio.sleep(0.2)
            batch = self.pending[:500]
            status, _ = await self.conn.request("POST", "/api/v1/agent/status", {"id": self.id, "updates": batch})
            if status == 200:
                del self.pending[:len(batch)]
                self.cluster.status_posts += 1
                self.cluster.status_updates += len(batch)
            elif status == 404:
                return
            else:
                await asyncio.sleep(0.2)


class SimCluster:
    def __init__(self, server_url, agents, cpus=64, mem=262144, ports=(20000, 29999)):
        u = urllib.parse.urlparse(server_url)
        self.host, self.port = u.hostname, u.port
        self.cpus, self.mem = cpus, mem
        self.port_begin, self.port_end = ports
        self.agents = [SimAgent(self, i) for i in range(agents)]
        self.stopping = False
        self.launches = 0         # launch commands received
        self.launched_at = {}     # task id -> when its launch command arrived (time.time())
        self.heartbeats = 0       # heartbeats the server answered 200
        self.heartbeats_paused = False
        self.status_posts = 0     # acknowledged POST /api/v1/agent/status
        self.status_updates = 0   # updates in them

    async def start(self):
        self.runs = [asyncio.ensure_future(a.run()) for a in self.agents]
        await asyncio.gather(*(a.registered.wait() for a in self.agents))

    async def stop(self):
        self.stopping = True
        for r in self.runs:
            r.cancel()
        await asyncio.gather(*self.runs, return_exceptions=True)


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


class Server:
    """A `stele server` of its own, data and log in a temp dir. Exported-port
    probes are off by default (probe_interval=0): nothing listens on the
    simulated ports, and every probe result rebuilds the monitor's inventory of
    all running tasks, O(tasks) per probe (bench/README.md "dashboard_bench")."""

    def __init__(self, port=None, agent_timeout=60, deploy_timeout=600, probe_interval=0):
        self.tmp = tempfile.mkdtemp(prefix="stele-sim-")
        self.port = port or stelelib.free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.log_path = os.path.join(self.tmp, "server.log")
        argv = [stelelib.STELE, "server", "--data-dir", os.path.join(self.tmp, "data"),
                "--listen", "127.0.0.1:%d" % self.port, "--forward-listen", "off",
                "--graphite-listen", "off", "--router-listen", "off",
                "--agent-timeout", str(agent_timeout), "--deploy-timeout", str(deploy_timeout),
                "--probe-interval", str(probe_interval)]
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        self.api = stelelib.Api(self.url)
        stelelib.wait_until(lambda: self.api.ping() or self._dead(), 15, "the server to answer")

    def _dead(self):
        if self.proc.poll() is not None:
            raise SystemExit("stele server exited %s; see %s" % (self.proc.returncode, self.log_path))
        return False

    def stop(self, keep_tmp=False):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if not keep_tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)


def app_spec(i, instances):
    return {"id": "/sim/app%04d" % i, "cmd": "sleep 3600", "cpus": 0.01, "mem": 1,
            "instances": instances, "portDefinitions": [{"port": 0}]}


async def create_apps(api, apps, instances, parallel=4, progress=None):
    """POST /v2/apps for /sim/app0000.. in `parallel` threads (the server
    answers one at a time; this only hides the round trips)."""
    loop = asyncio.get_running_loop()
    sem = asyncio.Semaphore(parallel)
    done = 0
    t0 = time.time()

    async def one(i):
        nonlocal done
        async with sem:
            await loop.run_in_executor(None, lambda: api.call("POST", "/v2/apps", app_spec(i, instances),
                                                                expect=(200, 201), timeout=120))
        done += 1
        if progress and done % 100 == 0:
            progress("  %d apps created, %.1f s" % (done, time.time() - t0))
    await asyncio.gather(*(one(i) for i in range(apps)))


async def wait_running(api, want, timeout):
    """Until `want` tasks are running; the seconds it took."""
    loop = asyncio.get_running_loop()
    t0 = time.time()
    while True:
        tasks = (await loop.run_in_executor(None, lambda: api.call("GET", "/api/v1/tasks", expect=200, timeout=60)))[1]["tasks"]
        running = sum(1 for t in tasks if t.get("state") == "running")
        if running >= want:
            return time.time() - t0
        if time.time() - t0 > timeout:
            raise SystemExit("only %d of %d instances running after %d s" % (running, want, timeout))
        await asyncio.sleep(2)  # /api/v1/tasks of 5,000 tasks is ~1.3 MB: polling it fast slows the launches


async def populate(url, agents, apps, instances, timeout=600, agents_first=True, progress=print):
    """A started SimCluster of `agents` at `url` with `apps` apps of `instances`
    instances all running. agents_first=False creates the apps before any agent
    registers (much faster: each create costs a cluster tick over every task)."""
    api = stelelib.Api(url)
    cluster = SimCluster(url, agents)
    t0 = time.time()
    if agents_first:
        await cluster.start()
        progress("registered %d simulated agents in %.2f s" % (agents, time.time() - t0))
    t1 = time.time()
    await create_apps(api, apps, instances, progress=progress)
    t_create = time.time() - t1
    if not agents_first:
        await cluster.start()
    await wait_running(api, apps * instances, timeout)
    progress("created %d apps in %.2f s; all %d instances running %.2f s after the first create" %
             (apps, t_create, apps * instances, time.time() - t1))
    return cluster


async def main_async(args):
    server = None if args.server else Server(agent_timeout=args.agent_timeout, probe_interval=args.probe_interval)
    url = args.server or server.url
    try:
        cluster = await populate(url, args.agents, args.apps, args.instances, args.timeout,
                                 agents_first=not args.apps_first, progress=lambda m: print(m, flush=True))
        if server:
            print("server RSS %.0f MB" % rss_mb(server.proc.pid), flush=True)
        if args.keep:
            print("keeping the cluster up at %s until Ctrl-C" % url, flush=True)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGINT, stop.set)
            loop.add_signal_handler(signal.SIGTERM, stop.set)
            await stop.wait()
        await cluster.stop()
    finally:
        if server:
            server.stop()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", help="an existing server's URL (default: start one)")
    p.add_argument("--agents", type=int, default=50)
    p.add_argument("--apps", type=int, default=500)
    p.add_argument("--instances", type=int, default=10)
    p.add_argument("--agent-timeout", type=int, default=60)
    p.add_argument("--timeout", type=int, default=600, help="seconds to wait for every instance to run")
    p.add_argument("--probe-interval", type=float, default=0,
                   help="the server's exported-port probes, seconds (default 0 = off: nothing listens)")
    p.add_argument("--apps-first", action="store_true", help="create the apps before the agents register")
    p.add_argument("--keep", action="store_true", help="stay up until Ctrl-C")
    args = p.parse_args()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
