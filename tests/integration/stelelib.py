"""Shared helpers of the integration tests: they drive the real `stele` binary.

Everything a test starts is owned by a `Harness` (one per test): processes are
started with their output in log files in the test's temp dir, stopped by
their pid only, and the tasks they leave behind are stopped with
`stele down --data-dir` (which works from the data dir alone) and, as a last
resort, by the executor pids written in each sandbox. Nothing is ever killed
by name. Traffic goes to 127.0.0.1 only.

Environment: STELE_BIN (path of the built binary; default ../../build/stele),
STELE_KEEP=1 keeps the temp dirs, STELE_LOGS=1 prints the logs even on success.
"""

import atexit
import http.client as httpclient
import json
import os
import pwd
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
STELE = os.environ.get("STELE_BIN") or os.path.join(HERE, "..", "..", "build", "stele")
STELE = os.path.abspath(STELE)

# Server and agent timeouts the tests rely on (seconds).
AGENT_TIMEOUT = 4
DEPLOY_TIMEOUT = 20

_live_harnesses = []


def log(msg):
    sys.stderr.write("[%s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


# --------------------------------------------------------------------------
# Waiting


class WaitTimeout(AssertionError):
    pass


def wait_until(fn, timeout, what, interval=0.1):
    """Polls fn() until it returns something truthy (returned) or timeout
    seconds passed (raises WaitTimeout naming `what` and the last value or
    exception seen)."""
    deadline = time.monotonic() + timeout
    last, last_exc = None, None
    while True:
        try:
            last = fn()
            last_exc = None
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - reported on timeout
            last_exc = e
        if time.monotonic() >= deadline:
            detail = ("last error: %r" % (last_exc,)) if last_exc is not None else ("last value: %r" % (last,))
            raise WaitTimeout("timed out after %.1fs waiting for %s (%s)" % (timeout, what, detail))
        time.sleep(interval)


# --------------------------------------------------------------------------
# Ports and processes


def port_open(port):
    """Whether something accepts TCP connections on 127.0.0.1:port."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def free_port():
    """A free loopback port, free for TCP and UDP both (the forward and graphite
    listeners bind both), from the ephemeral range, so never one of the 31xxx
    task ranges."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                    u.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise OSError("no loopback port free for both TCP and UDP")


def pid_alive(pid):
    """True while pid exists and is not a zombie."""
    if not pid or pid <= 0:
        return False
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    state = stat[stat.rfind(")") + 2:].split()[0]
    return state not in ("Z", "X")


def proc_ppid(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
        return int(stat[stat.rfind(")") + 2:].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def proc_uid(pid):
    """Real uid of pid, from /proc/<pid>/status."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    raise AssertionError("no Uid line for pid %d" % pid)


def proc_cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def descendants(pid):
    """Every live descendant of pid (host pids), by scanning /proc."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pp = proc_ppid(int(name))
        if pp is not None:
            children.setdefault(pp, []).append(int(name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            out.append(c)
            todo.append(c)
    return [p for p in out if pid_alive(p)]


def app_process(task_pid, name="python3"):
    """The app's own process under a task's root pid (the task's pid is the
    init of its pid namespace; the app is a descendant running `name`)."""
    for p in [task_pid] + descendants(task_pid):
        argv = proc_cmdline(p)
        if argv and os.path.basename(argv[0]).startswith(name):
            return p
    return None


def task_user_uid():
    return pwd.getpwnam("stele-task").pw_uid


class Proc:
    """A process this harness started; output to a log file."""

    def __init__(self, name, argv, logpath, env=None, cwd=None):
        self.name = name
        self.argv = argv
        self.logpath = logpath
        self.logfile = open(logpath, "ab")
        self.logfile.write(("\n--- started %s: %s\n" % (time.strftime("%H:%M:%S"), " ".join(argv))).encode())
        self.logfile.flush()
        self.popen = subprocess.Popen(argv, stdout=self.logfile, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, env=env, cwd=cwd, start_new_session=True)
        self.pid = self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def signal(self, sig):
        if self.popen.poll() is None:
            os.kill(self.pid, sig)

    def kill9(self):
        self.signal(signal.SIGKILL)
        self.popen.wait(10)

    def stop(self, timeout=10):
        """SIGTERM, then SIGKILL after timeout; returns the exit code."""
        if self.popen.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                log("%s (pid %d) ignored SIGTERM for %ss; SIGKILL" % (self.name, self.pid, timeout))
                os.kill(self.pid, signal.SIGKILL)
                self.popen.wait(10)
        self.logfile.close()
        return self.popen.returncode

    def output(self):
        try:
            with open(self.logpath, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""


class TcpProxy:
    """A loopback TCP proxy owned by a test, to put between an agent and the
    server: hold() keeps what the server sends from reaching the agent (a slow
    or partitioned network), drop_all() breaks every connection and discards
    what was held (as when the server dies before its bytes are out)."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.lock = threading.Lock()
        self.pairs = []
        self.holding = False
        self.held_bytes = 0
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.lsock.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            pair = (client, upstream)
            with self.lock:
                self.pairs.append(pair)
            threading.Thread(target=self._pump, args=(client, upstream, False, pair), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True, pair), daemon=True).start()

    def _pump(self, src, dst, from_server, pair):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if from_server and self.holding:
                    with self.lock:
                        self.held_bytes += len(data)
                    continue  # never delivered
                dst.sendall(data)
        except OSError:
            pass
        self._close_pair(pair)

    def _close_pair(self, pair):
        for sk in pair:
            try:
                sk.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sk.close()
        with self.lock:
            if pair in self.pairs:
                self.pairs.remove(pair)

    def hold(self):
        self.holding = True

    def resume(self):
        self.holding = False

    def drop_all(self):
        with self.lock:
            pairs = list(self.pairs)
        for p in pairs:
            self._close_pair(p)

    def close(self):
        self.closed = True
        try:
            self.lsock.close()
        except OSError:
            pass
        self.drop_all()


# --------------------------------------------------------------------------
# HTTP


class HttpError(AssertionError):
    pass


def http(method, url, body=None, timeout=10, headers=None):
    """Returns (status, parsed JSON or text or None). Never raises on 4xx/5xx."""
    data = None
    hdrs = {"Accept": "application/json"}
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    hdrs.update(headers or {})
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    text = raw.decode(errors="replace")
    try:
        return status, json.loads(text) if text.strip() else None
    except ValueError:
        return status, text


def get_text(url, timeout=2):
    """Body of a GET as text (raises on errors and non-2xx)."""
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode(errors="replace")


class SSE:
    """Reads a server-sent event stream in a background thread; events are
    dicts {"id", "event", "data"} (data parsed as JSON when it is)."""

    def __init__(self, base, path, headers=None, timeout=10):
        u = urllib.parse.urlsplit(base)
        self.conn = httpclient.HTTPConnection(u.hostname, u.port, timeout=timeout)
        self.conn.request("GET", path, headers=dict({"Accept": "text/event-stream"}, **(headers or {})))
        self.sock = self.conn.sock  # the response takes it over from the connection
        self.resp = self.conn.getresponse()
        if self.resp.status != 200:
            raise HttpError("GET %s: %d %s" % (path, self.resp.status, self.resp.read()[:500]))
        self.sock.settimeout(None)
        self.events = queue.Queue()
        self.closed = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        ev = {"id": None, "event": None, "data": []}
        try:
            while True:
                line = self.resp.readline()
                if not line:
                    break
                line = line.decode(errors="replace").rstrip("\r\n")
                if line == "":
                    if ev["data"] or ev["event"] or ev["id"] is not None:
                        data = "\n".join(ev["data"])
                        try:
                            parsed = json.loads(data)
                        except ValueError:
                            parsed = data
                        self.events.put({"id": ev["id"], "event": ev["event"], "data": parsed})
                    ev = {"id": None, "event": None, "data": []}
                    continue
                if line.startswith(":"):
                    continue
                field, _, value = line.partition(":")
                if value.startswith(" "):
                    value = value[1:]
                if field == "data":
                    ev["data"].append(value)
                elif field in ("id", "event"):
                    ev[field] = value
        except Exception:  # noqa: BLE001 - closed under us
            pass
        self.events.put(None)

    def next(self, timeout):
        """The next event, or None when the stream ended; raises WaitTimeout."""
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            raise WaitTimeout("no server-sent event within %ss" % timeout)

    def wait_for(self, pred, timeout, what):
        """Events up to and including the first one matching pred."""
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise WaitTimeout("timed out after %ss waiting for event %s; saw %d events: %s"
                                  % (timeout, what, len(seen), json.dumps([e["event"] for e in seen][-30:])))
            try:
                ev = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if ev is None:
                raise WaitTimeout("stream ended before event %s" % what)
            seen.append(ev)
            if pred(ev):
                return seen

    def drain(self, quiet=0.5):
        """Events arriving until none came for `quiet` seconds."""
        out = []
        while True:
            try:
                ev = self.events.get(timeout=quiet)
            except queue.Empty:
                return out
            if ev is None:
                return out
            out.append(ev)

    def close(self):
        if self.closed:
            return
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except (OSError, AttributeError):
            pass
        self.conn.close()


class Api:
    """JSON calls against one server."""

    def __init__(self, url):
        self.url = url

    def call(self, method, path, body=None, expect=None, timeout=10):
        status, doc = http(method, self.url + path, body, timeout=timeout)
        if expect is not None:
            ok = status in expect if isinstance(expect, (tuple, list, set)) else status == expect
            if not ok:
                raise HttpError("%s %s -> %d (wanted %s): %s" % (method, path, status, expect,
                                                                json.dumps(doc)[:2000] if not isinstance(doc, str) else doc[:2000]))
        return status, doc

    def get(self, path, expect=200):
        return self.call("GET", path, expect=expect)[1]

    def post(self, path, body=None, expect=(200, 201)):
        return self.call("POST", path, body, expect=expect)[1]

    def put(self, path, body=None, expect=(200, 201)):
        return self.call("PUT", path, body, expect=expect)[1]

    def delete(self, path, expect=(200, 202)):
        return self.call("DELETE", path, expect=expect)[1]

    def ping(self):
        try:
            return http("GET", self.url + "/ping", timeout=1)[0] == 200
        except OSError:
            return False

    # App-level conveniences (ids without the leading slash in URLs).

    def app(self, app_id):
        return self.get("/api/v1/apps/" + app_id.lstrip("/"))["app"]

    def v2app(self, app_id):
        return self.get("/v2/apps/" + app_id.lstrip("/"))["app"]

    def tasks(self, app_id):
        return self.get("/api/v1/apps/" + app_id.lstrip("/") + "/tasks")["tasks"]

    def live_tasks(self, app_id):
        return [t for t in self.tasks(app_id) if t["state"] in ("staging", "starting", "running")]

    def healthy_tasks(self, app_id):
        return [t for t in self.tasks(app_id) if t["state"] == "running" and t.get("healthy")]

    def sse(self, path, headers=None):
        return SSE(self.url, path, headers=headers)


def task_port(task):
    ports = task.get("ports") or []
    return ports[0] if ports else None


def task_answers(task, timeout=1.0):
    """The task's index.html (as the sample app serves it), or None."""
    port = task_port(task)
    if not port:
        return None
    try:
        return get_text("http://127.0.0.1:%d/" % port, timeout=timeout)
    except OSError:
        return None


# --------------------------------------------------------------------------
# Sample app


def sample_app(app_id="/web", instances=3, release_tag="v1", health_path="/health", **extra):
    """The sample HTTP app: index.html names the task id and release, /health
    answers; a health check on it every second."""
    spec = {
        "id": app_id,
        "cmd": ("printf '%s %s %s\\n' \"$STELE_TASK_ID\" \"$STELE_RELEASE\" \"$TAG\" > index.html && "
                "echo ok > health && exec python3 -m http.server --bind 127.0.0.1 \"$PORT0\""),
        "env": {"TAG": release_tag},
        "cpus": 0.1,
        "mem": 64,
        "instances": instances,
        "portDefinitions": [{"port": 0, "name": "http"}],
        "healthChecks": [{"protocol": "HTTP", "path": health_path, "portIndex": 0,
                          "gracePeriodSeconds": 5, "intervalSeconds": 1, "timeoutSeconds": 1,
                          "maxConsecutiveFailures": 2}],
        "upgradeStrategy": {"minimumHealthCapacity": 1, "maximumOverCapacity": 1},
    }
    spec.update(extra)
    return spec


# --------------------------------------------------------------------------
# The harness


def forward_flags(port, extra):
    """--forward-listen on the given loopback port (and the shared key when the
    test passed forward_shared_key=...)."""
    argv = ["--forward-listen", "127.0.0.1:%d" % port]
    if extra.get("forward_shared_key"):
        argv += ["--forward-shared-key", extra["forward_shared_key"]]
    return argv


def metrics_flags(graphite_port, extra):
    """--graphite-listen on the given loopback port (every server its own, so
    tests never collide on 2003), and the test's storage schemas if any."""
    argv = ["--graphite-listen", "127.0.0.1:%d" % graphite_port]
    if extra.get("metrics_schemas"):
        argv += ["--metrics-schemas", extra["metrics_schemas"]]
    return argv


def router_flags(router_port):
    """--router-listen on the given loopback port (every server its own, so
    tests never collide on 7080)."""
    return ["--router-listen", "127.0.0.1:%d" % router_port]


class Server:
    def __init__(self, h, name, data_dir, port, extra):
        self.h, self.name, self.data_dir, self.port, self.extra = h, name, data_dir, port, extra
        self.url = "http://127.0.0.1:%d" % port
        self.api = Api(self.url)
        self.proc = None
        # Every server gets its own forward port (kept across restarts), so
        # tests never collide on 24224.
        self.forward_port = extra.get("forward_port") or free_port()
        self.graphite_port = extra.get("graphite_port") or free_port()
        self.router_port = extra.get("router_port") or free_port()

    def start(self, wait=True):
        argv = [STELE, "server", "--data-dir", self.data_dir, "--listen", "127.0.0.1:%d" % self.port,
                "--agent-timeout", str(self.extra.get("agent_timeout", AGENT_TIMEOUT)),
                "--deploy-timeout", str(self.extra.get("deploy_timeout", DEPLOY_TIMEOUT))]
        argv += forward_flags(self.forward_port, self.extra)
        argv += metrics_flags(self.graphite_port, self.extra)
        argv += router_flags(self.router_port)
        if self.extra.get("probe_interval") is not None:
            argv += ["--probe-interval", str(self.extra["probe_interval"])]
        argv += self.extra.get("args", [])
        self.proc = self.h.spawn(self.name, argv)
        if wait:
            wait_until(lambda: self.api.ping() or self._dead(), 15, "%s to answer /ping" % self.name)
        return self

    def _dead(self):
        if not self.proc.alive():
            raise AssertionError("%s exited with %s:\n%s" % (self.name, self.proc.popen.returncode, self.proc.output()[-3000:]))
        return False


class Agent:
    def __init__(self, h, name, root, server_url, hostname, agent_id, ports, extra):
        self.h, self.name, self.root = h, name, root
        self.data_dir = os.path.join(root, "agent")  # so `stele down --data-dir root` finds it
        self.server_url, self.hostname, self.agent_id, self.ports, self.extra = server_url, hostname, agent_id, ports, extra
        self.proc = None

    def start(self):
        argv = [self.extra.get("binary", STELE), "agent", "--server", self.server_url, "--data-dir", self.data_dir,
                "--hostname", self.hostname, "--agent-id", self.agent_id, "--ports", self.ports,
                "--resources", self.extra.get("resources", "cpus=4,mem=4096,disk=10000"),
                "--agent-timeout", str(self.extra.get("agent_timeout", AGENT_TIMEOUT)),
                "--recovery-timeout", str(self.extra.get("recovery_timeout", 60)),
                "--advertise-addr", "127.0.0.1",
                "--metrics-interval", str(self.extra.get("metrics_interval", 10))]
        if self.extra.get("subscriptions"):
            argv += ["--subscriptions", self.extra["subscriptions"]]
        if self.extra.get("router_port"):
            argv += ["--router", "--router-listen", "127.0.0.1:%d" % self.extra["router_port"]]
        if self.extra.get("docker_socket"):
            argv += ["--docker-socket", self.extra["docker_socket"]]
        argv += self.extra.get("args", [])
        self.proc = self.h.spawn(self.name, argv)
        return self

    def executors_dir(self):
        return os.path.join(self.data_dir, "executors")


class Up:
    """`stele up` in the foreground, owned by the harness."""

    def __init__(self, h, name, data_dir, port, ports, apps, extra):
        self.h, self.name, self.data_dir, self.port, self.ports, self.apps, self.extra = \
            h, name, data_dir, port, ports, apps, extra
        self.url = "http://127.0.0.1:%d" % port
        self.api = Api(self.url)
        self.proc = None
        self.forward_port = extra.get("forward_port") or free_port()
        self.graphite_port = extra.get("graphite_port") or free_port()
        self.router_port = extra.get("router_port") or free_port()

    def start(self, wait=True):
        argv = [STELE, "up", "--data-dir", self.data_dir, "--listen", "127.0.0.1:%d" % self.port,
                "--ports", self.ports, "--hostname", self.extra.get("hostname", "uphost"),
                "--resources", "cpus=4,mem=4096,disk=10000",
                "--agent-timeout", str(self.extra.get("agent_timeout", AGENT_TIMEOUT)),
                "--deploy-timeout", str(self.extra.get("deploy_timeout", DEPLOY_TIMEOUT))]
        argv += forward_flags(self.forward_port, self.extra)
        argv += metrics_flags(self.graphite_port, self.extra)
        argv += router_flags(self.router_port)
        argv += ["--metrics-interval", str(self.extra.get("metrics_interval", 10))]
        for a in self.apps:
            argv += ["--app", a]
        argv += self.extra.get("args", [])
        self.proc = self.h.spawn(self.name, argv)
        if wait:
            wait_until(lambda: self.api.ping() or self._dead(), 15, "%s to answer /ping" % self.name)
        return self

    def _dead(self):
        if not self.proc.alive():
            raise AssertionError("%s exited with %s:\n%s" % (self.name, self.proc.popen.returncode, self.proc.output()[-3000:]))
        return False


class Harness:
    """One test's processes, data dirs and logs."""

    def __init__(self, label):
        self.label = label
        self.tmp = tempfile.mkdtemp(prefix="stele-it-%s-" % label.replace("/", "_")[:40])
        # Tasks run as the task user in sandboxes under the agents' data dirs:
        # the path down to them must be traversable (mkdtemp makes it 0700).
        os.chmod(self.tmp, 0o755)
        self.logdir = os.path.join(self.tmp, "logs")
        os.makedirs(self.logdir)
        self.procs = []         # every Proc started, in order
        self.task_roots = []    # data dirs to run `stele down --data-dir` on
        self.sses = []
        self.proxies = []
        self.cleaned = False
        _live_harnesses.append(self)

    def path(self, *parts):
        p = os.path.join(self.tmp, *parts)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        return p

    def spawn(self, name, argv, env=None):
        safe = name.replace("/", "_")
        p = Proc(name, argv, os.path.join(self.logdir, safe + ".log"), env=env)
        self.procs.append(p)
        return p

    def run(self, argv, timeout=60, check=True):
        """Runs a short command to completion; returns CompletedProcess (text)."""
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        with open(os.path.join(self.logdir, "commands.log"), "a") as f:
            f.write("$ %s\n[exit %d]\n%s%s\n" % (" ".join(argv), r.returncode, r.stdout, r.stderr))
        if check and r.returncode != 0:
            raise AssertionError("%s exited %d:\n%s\n%s" % (" ".join(argv), r.returncode, r.stdout, r.stderr))
        return r

    def server(self, name="server", **extra):
        s = Server(self, name, os.path.join(self.tmp, name), free_port(), extra)
        return s.start()

    def agent(self, server, name, hostname, ports, agent_id=None, server_url=None, **extra):
        """An agent of `server` (reached at server_url if given, e.g. a TcpProxy's)."""
        root = os.path.join(self.tmp, name)
        os.makedirs(root, exist_ok=True)
        self.task_roots.append(root)
        a = Agent(self, name, root, server_url or server.url, hostname, agent_id or ("agent-" + hostname.lower()), ports, extra)
        return a.start()

    def up(self, ports, apps=(), name="up", **extra):
        d = os.path.join(self.tmp, name)
        self.task_roots.append(d)
        u = Up(self, name, d, free_port(), ports, list(apps), extra)
        return u.start()

    def write_json(self, name, doc):
        p = self.path(name)
        with open(p, "w") as f:
            json.dump(doc, f)
        return p

    def sse(self, api, path, headers=None):
        s = api.sse(path, headers)
        self.sses.append(s)
        return s

    def proxy(self, target_port):
        p = TcpProxy(target_port)
        self.proxies.append(p)
        return p

    # -- teardown ---------------------------------------------------------

    def leftover_executors(self):
        """(sandbox, executor pid) of every executor still alive under this
        harness's agent data dirs (pid verified by its cwd)."""
        out = []
        for root in self.task_roots:
            ex = os.path.join(root, "agent", "executors")
            if not os.path.isdir(ex):
                continue
            for name in os.listdir(ex):
                sb = os.path.join(ex, name)
                try:
                    with open(os.path.join(sb, "executor.pid")) as f:
                        pid = int(f.read().strip() or 0)
                except (OSError, ValueError):
                    continue
                if not pid_alive(pid):
                    continue
                try:
                    cwd = os.readlink("/proc/%d/cwd" % pid)
                except OSError:
                    continue
                if os.path.realpath(sb) == cwd:
                    out.append((sb, pid))
        return out

    def task_pids_in_sandboxes(self):
        """Task root pids from status.json of non-terminal sandboxes, still alive."""
        out = []
        for root in self.task_roots:
            ex = os.path.join(root, "agent", "executors")
            if not os.path.isdir(ex):
                continue
            for name in os.listdir(ex):
                try:
                    with open(os.path.join(ex, name, "status.json")) as f:
                        st = json.load(f)
                except (OSError, ValueError):
                    continue
                pid = st.get("pid") or 0
                try:
                    # Still this sandbox's task (pids get reused): its cwd is the sandbox.
                    if pid_alive(pid) and os.readlink("/proc/%d/cwd" % pid) == os.path.realpath(os.path.join(ex, name)):
                        out.append(pid)
                except OSError:
                    continue
        return out

    def cleanup(self):
        if self.cleaned:
            return
        self.cleaned = True
        for s in self.sses:
            s.close()
        for p in self.proxies:
            p.close()
        # Our own processes, newest first (agents before the server), by pid.
        for p in reversed(self.procs):
            try:
                p.stop(timeout=10)
            except Exception as e:  # noqa: BLE001
                log("stopping %s: %r" % (p.name, e))
        # The tasks they leave running: `stele down` from each data dir.
        for root in self.task_roots:
            if os.path.isdir(os.path.join(root, "agent")):
                try:
                    self.run([STELE, "down", "--data-dir", root], timeout=60, check=False)
                except Exception as e:  # noqa: BLE001
                    log("stele down --data-dir %s: %r" % (root, e))
        # Last resort: executors (verified by cwd) and task inits still alive
        # a few seconds after `stele down` (an acked executor takes a moment to exit).
        deadline = time.monotonic() + 5
        while (self.leftover_executors() or self.task_pids_in_sandboxes()) and time.monotonic() < deadline:
            time.sleep(0.1)
        for sb, pid in self.leftover_executors():
            log("leftover executor %d in %s after `stele down`: SIGKILL" % (pid, sb))
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in self.task_pids_in_sandboxes():
            log("leftover task pid %d after `stele down`: SIGKILL" % pid)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self in _live_harnesses:
            _live_harnesses.remove(self)

    def dump_logs(self, out=sys.stderr):
        out.write("\n===== logs of %s (%s) =====\n" % (self.label, self.tmp))
        names = sorted(os.listdir(self.logdir)) if os.path.isdir(self.logdir) else []
        for n in names:
            with open(os.path.join(self.logdir, n), "rb") as f:
                text = f.read().decode(errors="replace")
            lines = text.splitlines()
            if len(lines) > 300:
                lines = ["... (%d lines cut)" % (len(lines) - 300)] + lines[-300:]
            out.write("----- %s -----\n%s\n" % (n, "\n".join(lines)))
        # Each sandbox: last status and the tail of the executor's log and the task's stderr.
        for root in self.task_roots:
            ex = os.path.join(root, "agent", "executors")
            for name in sorted(os.listdir(ex)) if os.path.isdir(ex) else []:
                out.write("----- sandbox %s -----\n" % os.path.join(ex, name))
                for f in ("status.json", "executor.log", "stderr"):
                    try:
                        with open(os.path.join(ex, name, f), "rb") as fh:
                            tail = fh.read().decode(errors="replace").splitlines()[-15:]
                    except OSError:
                        continue
                    out.write("  [%s]\n    %s\n" % (f, "\n    ".join(tail)))
        out.flush()

    def remove(self):
        if os.environ.get("STELE_KEEP"):
            log("kept %s" % self.tmp)
            return
        shutil.rmtree(self.tmp, ignore_errors=True)


@atexit.register
def _cleanup_all():
    for h in list(_live_harnesses):
        try:
            h.cleanup()
        except Exception as e:  # noqa: BLE001
            log("cleanup of %s: %r" % (h.label, e))


def _on_sigterm(signum, frame):
    _cleanup_all()
    sys.exit(128 + signum)


def etcd_healthy(client):
    """True when the etcd at client ("http://h:p") answers /health with true."""
    try:
        status, doc = http("GET", client + "/health", timeout=1)
        return status == 200 and "true" in json.dumps(doc)
    except OSError:
        return False


class SteleTestCase(unittest.TestCase):
    """A test with its own Harness (self.h); logs printed when it fails."""

    def start_etcd(self):
        """One etcd member (Debian's etcd-server) on loopback for this test;
        answers the --store URL. Skips the test when there is no etcd."""
        etcd = shutil.which("etcd")
        if not etcd:
            self.skipTest("no etcd binary on PATH (Debian's etcd-server; scripts/bootstrap installs it)")
        client = "http://127.0.0.1:%d" % free_port()
        peer = "http://127.0.0.1:%d" % free_port()
        self.h.spawn("etcd", [etcd, "--data-dir", self.h.path("etcd", "data"),
                              "--listen-client-urls", client, "--advertise-client-urls", client,
                              "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                              "--initial-cluster", "default=" + peer])
        wait_until(lambda: etcd_healthy(client), 20, "etcd to answer /health")
        return "etcd://" + client[len("http://"):]

    def setUp(self):
        if not os.access(STELE, os.X_OK):
            self.fail("STELE_BIN %s is not an executable" % STELE)
        self.h = Harness(self.id().split(".")[-1])
        self.addCleanup(self.h.cleanup)

    def run(self, result=None):
        if result is None:
            result = self.defaultTestResult()
        before = len(result.failures) + len(result.errors)
        try:
            return super().run(result)
        finally:
            h = getattr(self, "h", None)
            if h is not None:
                h.cleanup()
                if len(result.failures) + len(result.errors) > before or os.environ.get("STELE_LOGS"):
                    h.dump_logs()
                h.remove()

    # -- assertions and waits shared by the tests ---------------------------

    def wait_healthy(self, api, app_id, n, timeout=30, release=None):
        """Waits until the app has exactly n live tasks, all healthy (and of
        `release` if given), and its tasksHealthy says n; returns them."""
        def check():
            a = api.app(app_id)
            ts = api.healthy_tasks(app_id)
            if release is not None:
                ts = [t for t in ts if t["release"] == release]
            live = api.live_tasks(app_id)
            if len(ts) == n and a["tasksHealthy"] == n and len(live) == n:
                return ts
            return False
        return wait_until(check, timeout, "%d healthy tasks of %s%s" % (n, app_id, "" if release is None else " release %s" % release))

    def assert_tasks_answer(self, tasks):
        """Each task's port serves the sample app naming that task."""
        for t in tasks:
            body = wait_until(lambda: task_answers(t), 5, "task %s to answer on port %s" % (t["id"], task_port(t)))
            self.assertIn(t["id"], body, "port %s answers for another task" % task_port(t))


def main():
    signal.signal(signal.SIGTERM, _on_sigterm)
    unittest.main(verbosity=2)
