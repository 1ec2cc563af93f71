"""Test hosts made of network namespaces (issue «Cluster and HA», point 1).

A "switch" namespace holds a bridge; every host is its own namespace with one
veth link (eth0) into that bridge and the address the test gives it, so the
hosts talk only over those links. Nothing is added to the root namespace:
the test itself runs inside a "client" host (run_inside() re-executes the
test there), so all its traffic goes to addresses of namespaces it made.

A host can crash (every process in it SIGKILLed, its link down), be
partitioned (link down, processes keep running) and come back (link up).
Needs root and iproute2.
"""

import os
import shutil
import signal
import subprocess
import sys
import time

SUBNET = "10.213.7."


def _ip(*args, check=True):
    return subprocess.run(["ip"] + list(args), capture_output=True, text=True, check=check)


def available():
    """None when namespaces can be made here, else why not."""
    if os.geteuid() != 0:
        return "needs root (ip netns)"
    if not shutil.which("ip") or not shutil.which("nsenter"):
        return "needs iproute2's ip and util-linux's nsenter"
    return None


class Cluster:
    """Namespaces <prefix>sw (the bridge) and one per host."""

    def __init__(self, hosts, prefix=None):
        self.prefix = prefix or "stele%d-" % (os.getpid() % 100000)
        self.hosts = dict(hosts)  # name -> last octet
        self.made = []

    def ns(self, host):
        return self.prefix + host

    def addr(self, host):
        return SUBNET + str(self.hosts[host])

    def create(self):
        sw = self.ns("sw")
        _ip("netns", "add", sw)
        self.made.append(sw)
        _ip("-n", sw, "link", "add", "br0", "type", "bridge")
        _ip("-n", sw, "link", "set", "br0", "up")
        for i, (host, octet) in enumerate(sorted(self.hosts.items())):
            ns = self.ns(host)
            _ip("netns", "add", ns)
            self.made.append(ns)
            port = "p%d" % i
            _ip("-n", sw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
            _ip("-n", sw, "link", "set", port, "master", "br0", "up")
            _ip("-n", ns, "addr", "add", "%s%d/24" % (SUBNET, octet), "dev", "eth0")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "link", "set", "eth0", "up")
        return self

    def argv(self, host, argv):
        """argv run inside host's network namespace. nsenter, not `ip netns
        exec`, which remounts /sys (and so hides the cgroup hierarchies the
        agent puts tasks in)."""
        return ["nsenter", "--net=/run/netns/" + self.ns(host), "--"] + list(argv)

    def pids(self, host):
        r = _ip("netns", "pids", self.ns(host), check=False)
        return [int(p) for p in r.stdout.split()]

    def link(self, host, up):
        _ip("-n", self.ns(host), "link", "set", "eth0", "up" if up else "down")

    def crash(self, host):
        """Every process of the host killed at once, its link down."""
        self.link(host, False)
        for _ in range(5):
            pids = self.pids(host)
            if not pids:
                break
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)

    def destroy(self):
        for ns in reversed(self.made):
            for p in self.pids(ns[len(self.prefix):]) if ns != self.ns("sw") else []:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        time.sleep(0.2)
        for ns in reversed(self.made):
            _ip("netns", "del", ns, check=False)
        self.made = []


def run_inside(cluster, client_host):
    """Re-runs this test program inside client_host's namespace (the cluster
    description goes through the environment); returns its exit code. The
    namespaces are removed afterwards whatever happens."""
    env = dict(os.environ, STELE_NETNS_PREFIX=cluster.prefix)
    try:
        return subprocess.call(cluster.argv(client_host, [sys.executable] + sys.argv), env=env)
    finally:
        cluster.destroy()
