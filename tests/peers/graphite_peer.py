"""Private Graphite peers for the metrics tests and benchmarks: carbon-cache
1.1.7 + graphite-web 1.1.8 (the reference for /render), and VictoriaMetrics
1.79 (an ingest peer), all from Debian packages.

Everything runs from a temp dir on free 127.0.0.1 ports; /etc/carbon and
/etc/graphite are neither read nor written (carbon gets its own carbon.conf,
graphite-web its own settings module through GRAPHITE_SETTINGS_MODULE, served
by a small threaded wsgiref runner). Processes are stopped by the pid this
module started, never by name.

    import graphite_peer
    peer = graphite_peer.start(schemas_conf, aggregation_conf)   # text or file paths
    send lines to ("127.0.0.1", peer.line_port)                  # TCP; peer.udp_port for UDP
    peer.wait_persisted(n_points)      # by carbon's own metricsReceived / cache.size
    peer.wait_persisted([(name, ts), ...])   # by reading the whisper files
    peer.missing_points(names, timestamps)   # what is on disk (read here, no whisper import)
    json = peer.render(["sumSeries(a.*)"], **{"from": 1700000000, "until": 1700003600})
    peer.render_url()                  # http://127.0.0.1:P/render
    peer.stop()

    vm = graphite_peer.start_victoria_metrics()
    vm.graphite_port, vm.url, vm.rows_inserted(), vm.stop()

Packages: graphite-carbon, graphite-web, python3-whisper, victoria-metrics
(scripts/bootstrap installs them). ensure_packages() installs what is missing
with apt-get, behind a policy-rc.d that forbids starting services, and raises
PeerUnavailable naming the package when it cannot.

Carbon's own metrics (carbon.agents.*, CARBON_METRIC_INTERVAL = 1) are how
the peer knows what it received and persisted; a `^carbon\\.` schema of 1 s
is put in front of the caller's schemas so they are not averaged away (it
touches no other name). Environment: STELE_KEEP=1 keeps the temp dirs.
"""

import atexit
import glob
import json
import os
import pickle
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

PACKAGES = ("graphite-carbon", "graphite-web", "python3-whisper")
VM_PACKAGE = "victoria-metrics"
CARBON_CACHE = "/usr/bin/carbon-cache"
# graphite-web and whisper are Debian's python3 modules: run them with Debian's
# interpreter whatever `python3` is first on PATH.
DEBIAN_PYTHON = "/usr/bin/python3"
VICTORIA_METRICS = "/usr/bin/victoria-metrics"

# Points carbon's cache may still hold once everything sent was received for
# wait_persisted(n) to call it done: carbon's own metrics of the last second.
CACHE_SETTLED = 200

_live = []

# Process handling, ports and polling are the integration harness's.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import stelelib  # noqa: E402
from stelelib import free_port, port_open, wait_until  # noqa: E402,F401 (re-exported for the tests and bench)


class PeerUnavailable(Exception):
    """A peer cannot run here (a package is missing and could not be installed)."""


def log(msg):
    sys.stderr.write("[%s] graphite_peer: %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


# --------------------------------------------------------------------------
# Packages


def _installed(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
    return r.returncode == 0 and "ok installed" in r.stdout


def _usable(pkg):
    """The package is installed and what we use of it is there."""
    if not _installed(pkg):
        return False
    if pkg == "graphite-carbon":
        return os.access(CARBON_CACHE, os.X_OK)
    if pkg == "victoria-metrics":
        return os.access(VICTORIA_METRICS, os.X_OK)
    module = {"graphite-web": "graphite", "python3-whisper": "whisper"}.get(pkg)
    if module is None:
        return True
    r = subprocess.run([DEBIAN_PYTHON, "-c", "import importlib.util as u, sys; "
                        "sys.exit(0 if u.find_spec(%r) else 1)" % module], capture_output=True)
    return r.returncode == 0


def ensure_packages(packages=PACKAGES, install=True):
    """Installs the missing ones of `packages` (apt-get, services kept from
    starting by policy-rc.d); raises PeerUnavailable naming what is missing."""
    missing = [p for p in packages if not _usable(p)]
    if not missing:
        return
    why = "not installed"
    if install and os.geteuid() == 0 and shutil.which("apt-get"):
        log("installing %s (services kept from starting by policy-rc.d)" % " ".join(missing))
        policy = "/usr/sbin/policy-rc.d"
        created = not os.path.exists(policy)
        if created:
            with open(policy, "w") as f:
                f.write("#!/bin/sh\nexit 101\n")
            os.chmod(policy, 0o755)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        try:
            r = subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends"] + missing,
                               capture_output=True, text=True, env=env, timeout=600)
            if r.returncode != 0:  # a stale package list: update once and retry
                subprocess.run(["apt-get", "update", "-q"], capture_output=True, env=env, timeout=300)
                r = subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends"] + missing,
                                   capture_output=True, text=True, env=env, timeout=600)
            why = "apt-get install exited %d: %s" % (r.returncode, (r.stderr or r.stdout).strip()[-300:])
        except (OSError, subprocess.TimeoutExpired) as e:
            why = "apt-get install failed: %r" % (e,)
        finally:
            if created:
                os.unlink(policy)
        missing = [p for p in missing if not _usable(p)]
        if not missing:
            return
    elif install:
        why = "not installed, and apt-get needs root"
    raise PeerUnavailable("Debian package%s %s missing (%s)" % ("s" if len(missing) > 1 else "", " ".join(missing), why))


# --------------------------------------------------------------------------
# Ports, processes, files


def disk_bytes(path, skip=None):
    """Bytes allocated on disk (st_blocks) under path; `skip(relpath)` leaves files out."""
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            p = os.path.join(root, f)
            if skip and skip(os.path.relpath(p, path)):
                continue
            try:
                total += os.lstat(p).st_blocks * 512
            except OSError:
                pass
    return total


class Process(stelelib.Proc):
    """A process this module started; output to a log file; stopped by its pid."""

    def check_alive(self):
        if not self.alive():
            raise RuntimeError("%s exited with %s; its log %s ends:\n%s" % (
                self.name, self.popen.returncode, self.logpath, self.output()[-3000:]))
        return False

    def stop(self, timeout=20):
        return super().stop(timeout)


def _conf_text(conf):
    """A config given as a path to a file or as its text."""
    if conf is None:
        return ""
    if "\n" not in conf and os.path.isfile(conf):
        with open(conf) as f:
            return f.read()
    return conf


def _workdir(tmp, prefix):
    if tmp is None:
        return tempfile.mkdtemp(prefix=prefix, dir=os.environ.get("BENCH_TMP"))
    os.makedirs(tmp, exist_ok=True)
    return tempfile.mkdtemp(prefix=prefix, dir=tmp)


def http_get(url, timeout=30, data=None, headers=None):
    """(status, body text); never raises on HTTP errors."""
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


# --------------------------------------------------------------------------
# carbon-cache + graphite-web

CARBON_CONF = """\
# Written by tests/peers/graphite_peer.py: a private carbon-cache.
[cache]
STORAGE_DIR = {storage}/
LOCAL_DATA_DIR = {whisper}/
WHITELISTS_DIR = {storage}/lists/
CONF_DIR = {conf}/
LOG_DIR = {logdir}/
PID_DIR = {work}/
USER =
DATABASE = whisper
ENABLE_LOGROTATION = False
MAX_CACHE_SIZE = inf
MAX_UPDATES_PER_SECOND = inf
MAX_UPDATES_PER_SECOND_ON_SHUTDOWN = inf
MAX_CREATES_PER_MINUTE = inf
MIN_TIMESTAMP_RESOLUTION = 1
LINE_RECEIVER_INTERFACE = 127.0.0.1
LINE_RECEIVER_PORT = {line_port}
ENABLE_UDP_LISTENER = True
UDP_RECEIVER_INTERFACE = 127.0.0.1
UDP_RECEIVER_PORT = {udp_port}
PICKLE_RECEIVER_INTERFACE = 127.0.0.1
PICKLE_RECEIVER_PORT = {pickle_port}
CACHE_QUERY_INTERFACE = 127.0.0.1
CACHE_QUERY_PORT = {cache_port}
USE_FLOW_CONTROL = True
LOG_UPDATES = False
LOG_CREATES = False
LOG_CACHE_HITS = False
LOG_LISTENER_CONN_SUCCESS = False
CACHE_WRITE_STRATEGY = sorted
WHISPER_AUTOFLUSH = False
WHISPER_FALLOCATE_CREATE = True
CARBON_METRIC_PREFIX = carbon
CARBON_METRIC_INTERVAL = 1
ENABLE_MANHOLE = False
"""

# Carbon's own metrics, one point a second, kept apart from the caller's schemas.
SELF_SCHEMA = """\
[stele_peer_carbon_self]
pattern = ^carbon\\.
retentions = 1s:1d

"""

WEB_SETTINGS = """\
# Written by tests/peers/graphite_peer.py: graphite-web's settings for one
# private peer (GRAPHITE_SETTINGS_MODULE); /etc/graphite is not used.
SECRET_KEY = 'stele-graphite-peer'
TIME_ZONE = 'UTC'
DEBUG = False
LOG_ROTATION = False
LOG_RENDERING_PERFORMANCE = False
LOG_CACHE_PERFORMANCE = False
GRAPHITE_ROOT = {work!r}
CONF_DIR = {webconf!r}
STORAGE_DIR = {storage!r}
WHISPER_DIR = {whisper!r}
STANDARD_DIRS = [{whisper!r}]
CERES_DIR = {storage!r} + '/ceres'
RRD_DIR = {storage!r} + '/rrd'
INDEX_FILE = {storage!r} + '/index'
WHITELIST_FILE = {storage!r} + '/lists/whitelist'
LOG_DIR = {weblog!r}
STATIC_ROOT = '/usr/share/graphite-web/static'
CARBONLINK_HOSTS = ['127.0.0.1:{cache_port}']
CARBONLINK_TIMEOUT = 5.0
DEFAULT_XFILES_FACTOR = 0
FUNCTION_PLUGINS = []
DATABASES = {{'default': {{'NAME': {db!r}, 'ENGINE': 'django.db.backends.sqlite3',
                          'USER': '', 'PASSWORD': '', 'HOST': '', 'PORT': ''}}}}
"""

# A threaded wsgiref server around graphite.wsgi (graphite-web's own WSGI app).
# graphite-web 1.1.8's /functions calls inspect.getargspec and formatargspec,
# which Python 3.11 (Debian 12's) removed: without the two stand-ins below it
# answers 500 "module 'inspect' has no attribute 'getargspec'".
WSGI_RUNNER = r'''
import inspect, os, sys
from collections import namedtuple
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

if not hasattr(inspect, "getargspec"):
    ArgSpec = namedtuple("ArgSpec", "args varargs keywords defaults")

    def getargspec(func):
        s = inspect.getfullargspec(func)
        return ArgSpec(s.args, s.varargs, s.varkw, s.defaults)

    def formatargspec(args, varargs=None, varkw=None, defaults=None):
        first = len(args) - len(defaults or ())
        parts = [a if i < first else "%s=%r" % (a, defaults[i - first]) for i, a in enumerate(args)]
        parts += ["*" + varargs] if varargs else []
        parts += ["**" + varkw] if varkw else []
        return "(" + ", ".join(parts) + ")"

    inspect.getargspec, inspect.formatargspec = getargspec, formatargspec

port = int(sys.argv[1])
os.environ["DJANGO_SETTINGS_MODULE"] = "graphite.settings"
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0, interactive=False, run_syncdb=True)
from graphite.wsgi import application


class Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 64


class Handler(WSGIRequestHandler):
    def log_message(self, fmt, *args):
        sys.stderr.write("%s\n" % (fmt % args))


httpd = make_server("127.0.0.1", port, application, server_class=Server, handler_class=Handler)
print("graphite-web listening on 127.0.0.1:%d" % port, flush=True)
httpd.serve_forever()
'''


class GraphitePeer:
    """A private carbon-cache (line receiver on TCP .line_port and UDP
    .udp_port) and, unless web=False, graphite-web reading its whisper files
    and asking its cache (carbonlink) for points not written yet."""

    def __init__(self, schemas_conf, aggregation_conf=None, tmp=None, log_dir=None, web=True, keep=None):
        self.work = _workdir(tmp, "graphite-peer-")
        os.chmod(self.work, 0o755)
        self.keep = os.environ.get("STELE_KEEP") if keep is None else keep
        self.conf = os.path.join(self.work, "conf")
        self.storage = os.path.join(self.work, "storage")
        self.whisper_dir = os.path.join(self.storage, "whisper")
        self.logdir = log_dir or os.path.join(self.work, "log")
        for d in (self.conf, self.whisper_dir, os.path.join(self.storage, "lists"), self.logdir):
            os.makedirs(d, exist_ok=True)
        self.line_port = free_port()
        self.udp_port = self.line_port  # same number, as --graphite-listen
        self.pickle_port = free_port()
        self.cache_port = free_port()
        self.web_port = free_port() if web else None
        self.url = "http://127.0.0.1:%d" % self.web_port if web else None
        self.carbon = None
        self.web = None
        self.started_at = time.time()
        self._write_carbon_conf(_conf_text(schemas_conf), _conf_text(aggregation_conf))

    def _write_carbon_conf(self, schemas, aggregation):
        with open(os.path.join(self.conf, "carbon.conf"), "w") as f:
            f.write(CARBON_CONF.format(storage=self.storage, whisper=self.whisper_dir, conf=self.conf,
                                       logdir=self.logdir, work=self.work, line_port=self.line_port,
                                       udp_port=self.udp_port, pickle_port=self.pickle_port,
                                       cache_port=self.cache_port))
        with open(os.path.join(self.conf, "storage-schemas.conf"), "w") as f:
            f.write(SELF_SCHEMA + schemas)
        if aggregation.strip():
            with open(os.path.join(self.conf, "storage-aggregation.conf"), "w") as f:
                f.write(aggregation)

    # -- lifecycle ----------------------------------------------------------

    def start(self):
        _live.append(self)
        argv = [CARBON_CACHE, "--config=" + os.path.join(self.conf, "carbon.conf"),
                "--pidfile=" + os.path.join(self.work, "carbon-cache.pid"), "--logdir=" + self.logdir,
                "--nodaemon", "start"]
        self.carbon = Process("carbon-cache", argv, os.path.join(self.logdir, "carbon-cache.out"))
        wait_until(lambda: self.carbon.check_alive() or (port_open(self.line_port) and port_open(self.cache_port)),
                   30, "carbon-cache to listen on %d and %d" % (self.line_port, self.cache_port))
        if self.web_port:
            self._start_web()
        return self

    def _start_web(self):
        webconf = os.path.join(self.work, "webconf")
        pkg = os.path.join(self.work, "webpy")
        weblog = os.path.join(self.work, "weblog")  # its own dir: log_dir holds files only
        for d in (webconf, pkg, weblog):
            os.makedirs(d, exist_ok=True)
        with open(os.path.join(pkg, "stele_graphite_peer_settings.py"), "w") as f:
            f.write(WEB_SETTINGS.format(work=self.work, webconf=webconf, storage=self.storage, whisper=self.whisper_dir,
                                        weblog=weblog, cache_port=self.cache_port,
                                        db=os.path.join(self.work, "graphite.db")))
        runner = os.path.join(pkg, "graphite_web_runner.py")
        with open(runner, "w") as f:
            f.write(WSGI_RUNNER)
        env = dict(os.environ, PYTHONPATH=pkg, GRAPHITE_SETTINGS_MODULE="stele_graphite_peer_settings",
                   DJANGO_SETTINGS_MODULE="graphite.settings", PYTHONDONTWRITEBYTECODE="1")
        self.web = Process("graphite-web", [DEBIAN_PYTHON, runner, str(self.web_port)],
                           os.path.join(self.logdir, "graphite-web.out"), env=env, cwd=self.work)
        wait_until(lambda: self.web.check_alive() or http_get(self.url + "/version", timeout=5)[0] == 200,
                   60, "graphite-web to answer /version on %d" % self.web_port, interval=0.2)

    def stop(self):
        for p in (self.web, self.carbon):
            if p is not None:
                p.stop()
        if self in _live:
            _live.remove(self)
        if self.keep:
            log("kept %s" % self.work)
        else:
            shutil.rmtree(self.work, ignore_errors=True)

    # -- graphite-web -------------------------------------------------------

    def render_url(self, targets=None, **params):
        """/render's URL; with targets (a string or a list) and params, a GET URL."""
        base = self.url + "/render"
        if targets is None and not params:
            return base
        q = [("target", t) for t in ([targets] if isinstance(targets, str) else targets or [])]
        q += [(k, str(v)) for k, v in params.items()]
        return base + "?" + urllib.parse.urlencode(q)

    def render(self, targets, timeout=60, **params):
        """GET /render (format=json unless given); the parsed answer. Raises on non-200."""
        params.setdefault("format", "json")
        status, body = http_get(self.render_url(targets, **params), timeout=timeout)
        if status != 200:
            raise RuntimeError("graphite-web /render %s -> %d: %s" % (targets, status, body[:1000]))
        return json.loads(body) if params["format"] == "json" else body

    # -- carbon's own view --------------------------------------------------

    def _cache_query(self, metrics):
        """carbon's cache (what graphite-web asks over carbonlink): {metric: [(ts, v)]}."""
        req = pickle.dumps({"type": "cache-query-bulk", "metrics": list(metrics)}, protocol=2)
        with socket.create_connection(("127.0.0.1", self.cache_port), timeout=10) as s:
            s.sendall(struct.pack("!L", len(req)) + req)
            buf = b""
            while len(buf) < 4 or len(buf) < 4 + struct.unpack("!L", buf[:4])[0]:
                chunk = s.recv(65536)
                if not chunk:
                    raise RuntimeError("carbon's cache query port closed the connection")
                buf += chunk
        n = struct.unpack("!L", buf[:4])[0]
        return pickle.loads(buf[4:4 + n])["datapointsByMetric"]

    def self_metric(self, stat):
        """Carbon's own metric `stat` (carbon.agents.<host>.<stat>) since start:
        [(ts, value)] from its whisper file, then from its cache. A point being
        written between the two reads is missed for this call, never counted twice."""
        paths = glob.glob(os.path.join(self.whisper_dir, "carbon", "agents", "*", stat.replace(".", "/") + ".wsp"))
        points = {}
        for p in paths:
            points.update(whisper_points(p, int(self.started_at) - 2, int(time.time()) + 2))
        host = socket.gethostname().replace(".", "_")
        name = "carbon.agents.%s.%s" % (host, stat)
        for ts, v in self._cache_query([name]).get(name, []):
            points[float(ts)] = v
        return sorted(points.items())

    def received_points(self):
        return sum(v for _, v in self.self_metric("metricsReceived"))

    def committed_points(self):
        """Points carbon wrote to whisper (its own metrics' points included)."""
        return sum(v for _, v in self.self_metric("committedPoints"))

    # -- persistence --------------------------------------------------------

    def wait_persisted(self, points, timeout=300):
        """Waits until carbon has persisted `points`; returns a dict with
        received_at / persisted_at (epoch seconds) and carbon's counters.

        points is an int n: carbon received n points (the sum of its
        per-second metricsReceived records; or, since two records landing in
        one 1 s whisper slot lose one of them under load, receiving stopped
        for 3 s) and its cache then held at most CACHE_SETTLED points (carbon's
        own last second). The times are those of carbon's records (1 s
        resolution); "received" is that sum, a lower bound. missing_points()
        proves what is on disk.

        Or a list of (metric, timestamp) pairs: every one of them has a value
        in its whisper file (read back from disk). Or a list of metric names:
        each has a whisper file and nothing of it is left in carbon's cache."""
        if isinstance(points, int):
            return self._wait_count(points, timeout)
        points = list(points)
        if points and isinstance(points[0], str):
            return self._wait_names(points, timeout)
        return self._wait_points(points, timeout)

    def _wait_count(self, n, timeout):
        deadline = time.monotonic() + timeout
        while True:
            self.carbon.check_alive()
            recv = self.self_metric("metricsReceived")
            total, received_at = 0, None
            for ts, v in recv:
                total += v
                if received_at is None and total >= n:
                    received_at = ts
            quiet = total > 0 and len(recv) >= 3 and all(v == 0 for _, v in recv[-3:])
            if received_at is None and quiet:
                received_at = max(ts for ts, v in recv if v)
            if received_at is not None:
                for ts, size in self.self_metric("cache.size"):
                    if ts > received_at and size <= CACHE_SETTLED:
                        return {"received_at": received_at, "persisted_at": ts, "received": total,
                                "committed": self.committed_points()}
            if time.monotonic() >= deadline:
                raise TimeoutError("carbon persisted too little after %ss: received %d of %d points, cache %s" % (
                    timeout, total, n, (self.self_metric("cache.size") or [None])[-1]))
            time.sleep(0.25)

    def missing_points(self, names, timestamps):
        """How many of the points (each name at each timestamp) have no value in
        the whisper files (read back from disk), and a few of them."""
        timestamps = sorted(timestamps)
        missing, examples = 0, []
        for name in names:
            path = self.whisper_path(name)
            try:
                step = whisper_step(path)
                have = whisper_points(path, timestamps[0], timestamps[-1])
            except FileNotFoundError:
                step, have = 1, {}
            for ts in timestamps:
                if ts - ts % step not in have:
                    missing += 1
                    if len(examples) < 5:
                        examples.append((name, ts))
        return missing, examples

    def whisper_path(self, metric):
        return os.path.join(self.whisper_dir, *metric.split(".")) + ".wsp"

    def _wait_points(self, points, timeout):
        want = {}
        for name, ts in points:
            want.setdefault(name, set()).add(int(ts))
        deadline = time.monotonic() + timeout
        while True:
            self.carbon.check_alive()
            for name in list(want):
                path = self.whisper_path(name)
                if not os.path.exists(path):
                    continue
                step = whisper_step(path)
                have = whisper_points(path, min(want[name]), max(want[name]))
                want[name] = {ts for ts in want[name] if ts - ts % step not in have}
                if not want[name]:
                    del want[name]
            if not want:
                return {"persisted_at": time.time()}
            if time.monotonic() >= deadline:
                left = sum(len(v) for v in want.values())
                raise TimeoutError("carbon has not persisted %d points of %d series after %ss, e.g. %s %s" % (
                    left, len(want), timeout, next(iter(want)), sorted(next(iter(want.values())))[:5]))
            time.sleep(0.25)

    def _wait_names(self, names, timeout):
        def done():
            self.carbon.check_alive()
            if not all(os.path.exists(self.whisper_path(n)) for n in names):
                return False
            cached = self._cache_query(names)
            return all(not cached.get(n) for n in names)
        wait_until(done, timeout, "carbon to write %d series" % len(names), interval=0.25)
        return {"persisted_at": time.time()}

    def disk_bytes(self):
        """Bytes on disk of the whisper files, carbon's own metrics left out."""
        return disk_bytes(self.whisper_dir, skip=lambda rel: rel.startswith("carbon" + os.sep))


def start(schemas_conf, aggregation_conf=None, tmp=None, log_dir=None, web=True, install=True):
    """Starts carbon-cache (and graphite-web unless web=False) with the given
    storage-schemas.conf / storage-aggregation.conf (text or a file path);
    raises PeerUnavailable when the packages are missing and cannot be installed."""
    ensure_packages(PACKAGES, install=install)
    peer = GraphitePeer(schemas_conf, aggregation_conf, tmp=tmp, log_dir=log_dir, web=web)
    try:
        return peer.start()
    except BaseException:
        peer.stop()
        raise


# --------------------------------------------------------------------------
# Whisper files, read here without the whisper module (the tests may run under
# another interpreter than Debian's): header "!2LfL", archive infos "!3L"
# (offset, secondsPerPoint, points), points "!Ld" (interval, value) in a ring.


def _whisper_first_archive(f):
    _, _, _, count = struct.unpack("!2LfL", f.read(16))
    if count < 1:
        raise ValueError("whisper file without archives")
    return struct.unpack("!3L", f.read(12))


def whisper_step(path):
    with open(path, "rb") as f:
        return _whisper_first_archive(f)[1]


def whisper_points(path, from_ts, until_ts):
    """{interval: value} of the points between from_ts and until_ts (inclusive,
    aligned down to the step) in the file's finest archive."""
    with open(path, "rb") as f:
        offset, step, npoints = _whisper_first_archive(f)
        f.seek(offset)
        base, _ = struct.unpack("!Ld", f.read(12))
        if base == 0:  # nothing written yet
            return {}
        lo, hi = from_ts - from_ts % step, until_ts - until_ts % step
        n = min((hi - lo) // step + 1, npoints)
        first = ((lo - base) // step) % npoints
        f.seek(offset + first * 12)
        raw = f.read(min(n, npoints - first) * 12)
        if first + n > npoints:
            f.seek(offset)
            raw += f.read((first + n - npoints) * 12)
    out = {}
    for i in range(len(raw) // 12):
        interval, value = struct.unpack_from("!Ld", raw, i * 12)
        if lo <= interval <= hi:
            out[interval] = value
    return out


# --------------------------------------------------------------------------
# VictoriaMetrics


class VictoriaMetrics:
    """A private victoria-metrics with its Graphite listener (TCP and UDP
    .graphite_port) and HTTP API (.url). It has no /render in 1.79."""

    def __init__(self, tmp=None, log_dir=None, extra_args=(), keep=None):
        self.work = _workdir(tmp, "victoria-metrics-")
        self.keep = os.environ.get("STELE_KEEP") if keep is None else keep
        self.data = os.path.join(self.work, "data")
        self.logdir = log_dir or self.work
        self.graphite_port = free_port()
        self.http_port = free_port()
        self.url = "http://127.0.0.1:%d" % self.http_port
        self.extra_args = list(extra_args)
        self.proc = None

    def start(self):
        _live.append(self)
        argv = [VICTORIA_METRICS, "-graphiteListenAddr=127.0.0.1:%d" % self.graphite_port,
                "-httpListenAddr=127.0.0.1:%d" % self.http_port, "-storageDataPath=" + self.data,
                "-search.latencyOffset=0s", "-loggerLevel=WARN"] + self.extra_args
        self.proc = Process("victoria-metrics", argv, os.path.join(self.logdir, "victoria-metrics.out"), cwd=self.work)
        wait_until(lambda: self.proc.check_alive() or (http_get(self.url + "/health", timeout=2)[0] == 200
                                                         and port_open(self.graphite_port)),
                   30, "victoria-metrics to answer /health")
        return self

    def metric(self, name, labels=None):
        """The sum of the samples of `name` (whose labels include `labels`) in /metrics."""
        _, text = http_get(self.url + "/metrics", timeout=10)
        return prometheus_value(text, name, labels)

    def rows_inserted(self):
        return self.metric("vm_rows_inserted_total", {"type": "graphite"})

    def disk_bytes(self):
        return disk_bytes(self.data)

    def stop(self):
        if self.proc is not None:
            self.proc.stop(timeout=30)
        if self in _live:
            _live.remove(self)
        if self.keep:
            log("kept %s" % self.work)
        else:
            shutil.rmtree(self.work, ignore_errors=True)


def start_victoria_metrics(tmp=None, log_dir=None, extra_args=(), install=True):
    ensure_packages((VM_PACKAGE,), install=install)
    vm = VictoriaMetrics(tmp=tmp, log_dir=log_dir, extra_args=extra_args)
    try:
        return vm.start()
    except BaseException:
        vm.stop()
        raise


# --------------------------------------------------------------------------
# Shared by the tests and the benchmark


def prometheus_value(text, name, labels=None):
    """Sum of the samples of metric `name` in Prometheus text whose labels
    include every pair of `labels`; None when there is none."""
    total, found = 0.0, False
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        rest = line[len(name):]
        if rest[:1] not in ("{", " "):
            continue
        got = {}
        if rest.startswith("{"):
            body, rest = rest[1:].split("}", 1)
            for part in _split_labels(body):
                k, _, v = part.partition("=")
                got[k.strip()] = v.strip().strip('"')
        if labels and any(got.get(k) != v for k, v in labels.items()):
            continue
        try:
            total += float(rest.split()[0])
            found = True
        except (IndexError, ValueError):
            continue
    return total if found else None


def _split_labels(body):
    out, cur, quoted = [], "", False
    for i, c in enumerate(body):
        if c == '"' and (i == 0 or body[i - 1] != "\\"):
            quoted = not quoted
        if c == "," and not quoted:
            out.append(cur)
            cur = ""
        else:
            cur += c
    if cur.strip():
        out.append(cur)
    return out


def tcp_queues(local_port, remote_port):
    """(tx_queue, rx_queue) of the loopback TCP socket local_port -> remote_port
    from /proc/net/tcp, or None when there is no such socket."""
    want_l, want_r = "%04X" % local_port, "%04X" % remote_port
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            if parts[1].endswith(":" + want_l) and parts[2].endswith(":" + want_r):
                tx, rx = parts[4].split(":")
                return int(tx, 16), int(rx, 16)
    return None


def drained(client_port, server_port):
    """True when the sender's send queue and the server's receive queue of one
    loopback connection are both empty: the server has read every byte."""
    c = tcp_queues(client_port, server_port)
    s = tcp_queues(server_port, client_port)
    return c is not None and s is not None and c[0] == 0 and s[1] == 0


def send_tcp(port, data, chunk=4 << 20):
    """Sends bytes over one new TCP connection in `chunk`-sized sendall()s; returns the open socket."""
    s = socket.create_connection(("127.0.0.1", port), timeout=120)
    view = memoryview(data)
    for i in range(0, len(view), chunk):
        s.sendall(view[i:i + chunk])
    return s


def send_udp(port, lines, max_datagram=1400):
    """Sends newline-terminated lines in datagrams of whole lines."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        buf = b""
        for line in lines:
            if buf and len(buf) + len(line) > max_datagram:
                s.sendto(buf, ("127.0.0.1", port))
                buf = b""
            buf += line
        if buf:
            s.sendto(buf, ("127.0.0.1", port))


@atexit.register
def _stop_all():
    for p in list(_live):
        try:
            p.stop()
        except Exception as e:  # noqa: BLE001
            log("stopping %r: %r" % (p, e))
