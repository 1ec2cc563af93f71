#!/usr/bin/env python3
"""Router: Stele's built-in reverse proxy against HAProxy 2.6 and nginx 1.22,
in front of the same backend in the same run, interleaved round by round.

Backend: nginx (1 worker, no access log, `return 200 "ok"`) run as a Stele
app by a real `stele agent`, so Stele's router reaches it the way it reaches
every app (the app's "routes"); HAProxy and nginx are pointed at the same
instance's port. Proxies: each pinned with `taskset -c <--proxy-cpu>` (the
whole `stele server` process, the router thread with it), one worker/thread,
keep-alive to the upstream, an access log on for all three (Stele's into its
log store, HAProxy's and nginx's to files in the temp dir). Load: `wrk -t2
-c64 -d<--seconds>s --latency -H 'Host: bench.localhost'` unpinned (wrk, the
proxy and the backend share the 2 cores; ratios to the backend hit directly
in the same round are the telling figures).

Usage: STELE_BIN=build/stele python3 bench/router_bench.py [--rounds 3] [--seconds 10]
Needs wrk, haproxy and nginx (Debian: apt-get install wrk haproxy nginx-light,
with a policy-rc.d that forbids starting services). Traffic stays on
127.0.0.1; every process started here is stopped by its pid.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
from benchlib import taskset  # noqa: E402
from stelelib import Proc, free_port, port_open, wait_until  # noqa: E402

STELE = os.environ.get("STELE_BIN") or os.path.join(HERE, "..", "build", "stele")
HOST = "bench.localhost"

BACKEND_CONF = """worker_processes 1;
daemon off;
pid @DIR@/nginx.pid;
error_log stderr warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path @DIR@/t; proxy_temp_path @DIR@/t; fastcgi_temp_path @DIR@/t;
  uwsgi_temp_path @DIR@/t; scgi_temp_path @DIR@/t;
  server { listen 127.0.0.1:@PORT@; location / { return 200 "ok\\n"; } }
}
"""

NGINX_PROXY_CONF = """worker_processes 1;
daemon off;
pid {dir}/nginx-proxy.pid;
error_log {dir}/nginx-proxy.err warn;
events {{ worker_connections 4096; }}
http {{
  access_log {dir}/nginx-access.log;
  client_body_temp_path {dir}/t; proxy_temp_path {dir}/t; fastcgi_temp_path {dir}/t;
  uwsgi_temp_path {dir}/t; scgi_temp_path {dir}/t;
  upstream app {{ server 127.0.0.1:{backend}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{ proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection "";
                 proxy_set_header Host $host; proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; }}
  }}
}}
"""

HAPROXY_CONF = """global
  nbthread 1
  maxconn 4096
  log stdout format raw local0
defaults
  mode http
  log global
  option httplog
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  http-reuse always
frontend web
  bind 127.0.0.1:{port}
  option forwardfor
  default_backend app
backend app
  server b1 127.0.0.1:{backend}
"""


def api(url, method="GET", body=None):
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"{}")


def wrk(port, seconds):
    out = subprocess.run(["wrk", "-t2", "-c64", "-d%ds" % seconds, "--latency", "-H", "Host: " + HOST,
                          "http://127.0.0.1:%d/" % port], capture_output=True, text=True, timeout=seconds + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99_ms = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    if errors or socket_errors:
        raise RuntimeError("wrk saw errors on port %d:\n%s" % (port, out))
    return rps, p99_ms


def median_range(xs, fmt="{:,.0f}"):
    return "%s (%s-%s)" % (fmt.format(statistics.median(xs)), fmt.format(min(xs)), fmt.format(max(xs)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10, help="wrk duration per measurement")
    ap.add_argument("--proxy-cpu", type=int, default=1, help="core every proxy is pinned to (-1: unpinned)")
    args = ap.parse_args()
    for tool in ("wrk", "haproxy", "nginx", "taskset"):
        if not shutil.which(tool):
            sys.exit("router_bench: %s not found (apt-get install wrk haproxy nginx-light)" % tool)

    tmp = tempfile.mkdtemp(prefix="stele-router-bench-")
    os.chmod(tmp, 0o755)  # the task user enters the agent's data dir below it
    procs = []
    try:
        os.makedirs(os.path.join(tmp, "t"))
        api_port, router_port = free_port(), free_port()
        server = Proc("stele", taskset(args.proxy_cpu) + [
            STELE, "server", "--data-dir", os.path.join(tmp, "server"), "--listen", "127.0.0.1:%d" % api_port,
            "--router-listen", "127.0.0.1:%d" % router_port, "--forward-listen", "127.0.0.1:%d" % free_port(),
            "--graphite-listen", "127.0.0.1:%d" % free_port()], os.path.join(tmp, "server.log"))
        procs.append(server)
        url = "http://127.0.0.1:%d" % api_port
        wait_until(lambda: port_open(api_port), 20, "stele server")
        agent = Proc("agent", [STELE, "agent", "--server", url, "--data-dir", os.path.join(tmp, "agent"),
                               "--hostname", "benchhost", "--ports", "31700-31719",
                               "--resources", "cpus=2,mem=4096,disk=1000"], os.path.join(tmp, "agent.log"))
        procs.append(agent)
        api(url + "/v2/apps", "POST", {
            "id": "/bench", "instances": 1, "cpus": 1, "mem": 256,
            "cmd": ("mkdir -p t && printf '%s' \"$NGINX_CONF\" | sed -e \"s|@DIR@|$PWD|g\" -e \"s|@PORT@|$PORT0|g\" "
                    "> nginx.conf && exec nginx -p \"$PWD/\" -c \"$PWD/nginx.conf\""),
            "env": {"NGINX_CONF": BACKEND_CONF},
            "portDefinitions": [{"port": 0, "name": "http"}],
            "healthChecks": [{"protocol": "HTTP", "path": "/", "portIndex": 0, "intervalSeconds": 1,
                              "gracePeriodSeconds": 10}],
            "routes": [{"host": HOST}]})
        task = wait_until(lambda: [t for t in api(url + "/api/v1/apps/bench/tasks")["tasks"]
                                   if t["state"] == "running" and t.get("healthy")], 60, "the nginx backend app")[0]
        backend = task["ports"][0]
        wait_until(lambda: api(url + "/api/v1/routes")["routers"][0]["appliedVersion"] ==
                   api(url + "/api/v1/routes")["version"] or None, 10, "the router's table")

        nginx_port, haproxy_port = free_port(), free_port()
        with open(os.path.join(tmp, "nginx-proxy.conf"), "w") as f:
            f.write(NGINX_PROXY_CONF.format(dir=tmp, port=nginx_port, backend=backend))
        procs.append(Proc("nginx-proxy", taskset(args.proxy_cpu) + [
            "nginx", "-p", tmp + "/", "-c", os.path.join(tmp, "nginx-proxy.conf")], os.path.join(tmp, "nginx.log")))
        with open(os.path.join(tmp, "haproxy.cfg"), "w") as f:
            f.write(HAPROXY_CONF.format(port=haproxy_port, backend=backend))
        procs.append(Proc("haproxy", taskset(args.proxy_cpu) + ["haproxy", "-f", os.path.join(tmp, "haproxy.cfg")],
                          os.path.join(tmp, "haproxy.log")))
        for p in (nginx_port, haproxy_port):
            wait_until(lambda: port_open(p), 10, "proxy on %d" % p)

        sides = [("direct", backend), ("stele", router_port), ("haproxy", haproxy_port), ("nginx", nginx_port)]
        print("router: wrk -t2 -c64 -d%ds --latency, Host %s; backend nginx (1 worker) on %d; proxies on cpu %s"
              % (args.seconds, HOST, backend, args.proxy_cpu), flush=True)
        results = {name: [] for name, _ in sides}
        for rnd in range(1, args.rounds + 1):
            cells = []
            for name, port in sides:
                wrk(port, 1)  # warm-up (connections, pools)
                rps, p99 = wrk(port, args.seconds)
                results[name].append((rps, p99))
                cells.append("%s %.0f req/s p99 %.2f ms" % (name, rps, p99))
            print("round %d: %s" % (rnd, " | ".join(cells)), flush=True)

        print("\nrouter: median (min-max) of %d rounds" % args.rounds)
        row = "  {:<9} {:<32} {:<24} {}"
        print(row.format("side", "requests/s", "p99 ms", "ratio to direct (same round)"))
        for name, _ in sides:
            rps = [r for r, _ in results[name]]
            p99 = [p for _, p in results[name]]
            ratio = [r / d for (r, _), (d, _) in zip(results[name], results["direct"])]
            print(row.format(name, median_range(rps), median_range(p99, "{:.2f}"), median_range(ratio, "{:.2f}")))
        for peer in ("haproxy", "nginx"):
            ratio = [s / p for (s, _), (p, _) in zip(results["stele"], results[peer])]
            print("  stele/%s requests/s = %s" % (peer, median_range(ratio, "{:.2f}")))
    finally:
        for p in reversed(procs):
            p.stop()
        subprocess.run([STELE, "down", "--data-dir", tmp], capture_output=True, timeout=60)
        if os.environ.get("STELE_KEEP"):
            print("kept", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
