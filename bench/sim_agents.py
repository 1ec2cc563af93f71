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
and the server's RSS. --keep leaves everything up until Ctrl-C (for the
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
            status, _ = await self.conn.request("POST", "/api/v1/agent/heartbeat", {"id": self.id})
            if status == 404:
                return
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
            batch = self.pending[:200]
            status, _ = await self.conn.request("POST", "/api/v1/agent/status", {"id": self.id, "updates": batch})
            if status == 200:
                del self.pending[:len(batch)]
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
        self.launches = 0

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


async def main_async(args):
    server_proc, tmp = None, None
    url = args.server
    if not url:
        tmp = tempfile.mkdtemp(prefix="stele-sim-")
        port = stelelib.free_port()
        url = "http://127.0.0.1:%d" % port
        log = open(os.path.join(tmp, "server.log"), "w")
        server_proc = subprocess.Popen([stelelib.STELE, "server", "--data-dir", os.path.join(tmp, "data"),
                                        "--listen", "127.0.0.1:%d" % port, "--forward-listen", "off",
                                        "--graphite-listen", "off", "--router-listen", "off",
                                        "--agent-timeout", str(args.agent_timeout)],
                                       stdout=log, stderr=subprocess.STDOUT)
        api = stelelib.Api(url)
        stelelib.wait_until(lambda: api.ping(), 15, "the server to answer")
    api = stelelib.Api(url)
    try:
        cluster = SimCluster(url, args.agents)
        t0 = time.time()
        await cluster.start()
        t_reg = time.time() - t0
        print("registered %d simulated agents in %.2f s" % (args.agents, t_reg), flush=True)
        t1 = time.time()
        loop = asyncio.get_running_loop()
        for i in range(args.apps):
            spec = {"id": "/sim/app%04d" % i, "cmd": "sleep 3600", "cpus": 0.01, "mem": 1,
                    "instances": args.instances, "portDefinitions": [{"port": 0}]}
            await loop.run_in_executor(None, lambda s=spec: api.post("/v2/apps", s))
            if (i + 1) % 100 == 0:
                print("  %d apps created, %.1f s" % (i + 1, time.time() - t1), flush=True)
        t_create = time.time() - t1
        want = args.apps * args.instances
        while True:
            tasks = (await loop.run_in_executor(None, lambda: api.get("/api/v1/tasks")))["tasks"]
            running = sum(1 for t in tasks if t.get("state") == "running")
            if running >= want:
                break
            if time.time() - t1 > args.timeout:
                raise SystemExit("only %d of %d instances running after %d s" % (running, want, args.timeout))
            await asyncio.sleep(0.5)
        t_run = time.time() - t1
        print("created %d apps in %.2f s; all %d instances running %.2f s after the first create" %
              (args.apps, t_create, want, t_run), flush=True)
        if server_proc:
            print("server RSS %.0f MB" % rss_mb(server_proc.pid), flush=True)
        if args.keep:
            print("keeping the cluster up at %s until Ctrl-C" % url, flush=True)
            stop = asyncio.Event()
            loop.add_signal_handler(signal.SIGINT, stop.set)
            loop.add_signal_handler(signal.SIGTERM, stop.set)
            await stop.wait()
        await cluster.stop()
    finally:
        if server_proc:
            server_proc.terminate()
            server_proc.wait(10)
            shutil.rmtree(tmp, ignore_errors=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", help="an existing server's URL (default: start one)")
    p.add_argument("--agents", type=int, default=50)
    p.add_argument("--apps", type=int, default=500)
    p.add_argument("--instances", type=int, default=10)
    p.add_argument("--agent-timeout", type=int, default=60)
    p.add_argument("--timeout", type=int, default=600, help="seconds to wait for every instance to run")
    p.add_argument("--keep", action="store_true", help="stay up until Ctrl-C")
    args = p.parse_args()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
