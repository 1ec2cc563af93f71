"""Metrics, Graphite differential: the same points sent to `stele server
--graphite-listen` and to carbon-cache 1.1.7 render the same through Stele's
/render and graphite-web 1.1.8's, for every target of render_targets.txt.

The peers (tests/peers/graphite_peer.py) are Debian's graphite-carbon,
graphite-web and python3-whisper, run privately from a temp dir; the test is
skipped, naming the package, only when they are missing and cannot be
installed. Both sides get the same storage-schemas.conf (10s:6h,1m:7d) and
storage-aggregation.conf. The points (make_points) are deterministic apart
from their anchor, the current minute: a few dozen series with gaps, negative
values, counter resets, points off the step, NaN lines (dropped by both), a
series that is only NaN (created by neither) and a few sent over UDP.

Each side is waited for until it has persisted every point: Stele by its
stele_metrics_points_durable_total counter, carbon by reading its whisper
files back; then a render of diff.*.*.* must show every point on both. Each
target is rendered with format=json and the from/until of its line (the whole
data set by default, explicit epochs); names, timestamps and values must
agree (values within 1e-9 relative). /metrics/find and /metrics/expand are
compared the same way. Every mismatch is printed, then the test fails.

Run: STELE_BIN=build/stele python3 tests/integration/test_metrics_diff.py -v
"""

import json
import math
import os
import re
import sys
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "peers"))

import graphite_peer  # noqa: E402
import stelelib  # noqa: E402
from stelelib import HERE, STELE, SteleTestCase, free_port, log, wait_until  # noqa: E402

TARGETS_FILE = os.path.join(HERE, "render_targets.txt")

SCHEMAS = """\
[diff]
pattern = ^diff\\.
retentions = 10s:6h,1m:7d

[default]
pattern = .*
retentions = 10s:6h,1m:7d
"""

AGGREGATION = """\
[errors]
pattern = \\.errors$
xFilesFactor = 0
aggregationMethod = sum

[requests]
pattern = \\.requests$
xFilesFactor = 0.1
aggregationMethod = last

[temp]
pattern = \\.temp$
xFilesFactor = 0.3
aggregationMethod = min

[latency]
pattern = \\.latency$
xFilesFactor = 0.5
aggregationMethod = max

[default]
pattern = .*
xFilesFactor = 0.5
aggregationMethod = average
"""

HOSTS = ("web1", "web2", "db1")
APPS = ("shop", "api")
STEP = 10
SPAN = 3 * 3600
REL_TOL = 1e-9

# What the target file must cover (checked, so an edit cannot drop one).
FUNCTIONS = ("aliasSub", "alias", "aliasByNode", "sumSeries", "averageSeries", "maxSeries", "minSeries", "scale",
             "offset", "derivative", "nonNegativeDerivative", "perSecond", "movingAverage", "summarize",
             "groupByNode", "highestCurrent", "highestAverage", "asPercent", "divideSeries", "keepLastValue",
             "transformNull", "removeBelowValue", "timeShift", "constantLine")
GLOBS = {"*": r"\*", "?": r"\?", "[a-z]": r"\[[^\]]+\]", "{a,b}": r"\{[^}]*,[^}]*\}"}
TIME_FORMATS = {"-1h": r"=-1h\b", "-10min": r"=-10min\b", "now": r"=now\b", "epoch": r"\{epoch",
                "HH:MM_YYYYMMDD": r"\{HH:MM_YYYYMMDD", "YYYYMMDD": r"\{YYYYMMDD"}


# --------------------------------------------------------------------------
# Stele with its Graphite input


class MetricsServer(stelelib.Server):
    """`stele server` with --graphite-listen (TCP and UDP on one port),
    --metrics-schemas and --metrics-aggregation."""

    def __init__(self, h, name, schemas, aggregation=None, **extra):
        super().__init__(h, name, os.path.join(h.tmp, name), free_port(), extra)
        self.graphite_port = graphite_peer.free_port()
        self.schemas_path = h.path(name + "-conf", "storage-schemas.conf")
        with open(self.schemas_path, "w") as f:
            f.write(schemas)
        self.aggregation_path = None
        if aggregation:
            self.aggregation_path = h.path(name + "-conf", "storage-aggregation.conf")
            with open(self.aggregation_path, "w") as f:
                f.write(aggregation)

    def start(self, wait=True):
        argv = [STELE, "server", "--router-listen", "off", "--data-dir", self.data_dir, "--listen", "127.0.0.1:%d" % self.port,
                "--agent-timeout", str(self.extra.get("agent_timeout", stelelib.AGENT_TIMEOUT)),
                "--deploy-timeout", str(self.extra.get("deploy_timeout", stelelib.DEPLOY_TIMEOUT))]
        argv += stelelib.forward_flags(self.forward_port, self.extra)
        argv += ["--graphite-listen", "127.0.0.1:%d" % self.graphite_port, "--metrics-schemas", self.schemas_path]
        if self.aggregation_path:
            argv += ["--metrics-aggregation", self.aggregation_path]
        self.proc = self.h.spawn(self.name, argv)
        if wait:
            wait_until(lambda: self.api.ping() or self._dead(), 15, "%s to answer /ping" % self.name)
            wait_until(lambda: graphite_peer.port_open(self.graphite_port) or self._dead(), 15,
                       "%s to listen on --graphite-listen %d" % (self.name, self.graphite_port))
        return self

    def durable_points(self):
        """stele_metrics_points_durable_total from /metrics (None when absent)."""
        return graphite_peer.prometheus_value(stelelib.get_text(self.url + "/metrics", timeout=5),
                                              "stele_metrics_points_durable_total")

    def wait_durable(self, n, timeout=60):
        """Waits until the counter reaches n (read it before sending: it may count other points)."""
        return wait_until(lambda: self._dead() or (self.durable_points() or 0) >= n, timeout,
                          "%s: stele_metrics_points_durable_total >= %d (now %s)" % (self.name, n, self.durable_points()))


def metrics_server(h, schemas=SCHEMAS, aggregation=AGGREGATION, name="server"):
    return MetricsServer(h, name, schemas, aggregation).start()


def require_peers():
    """The graphite peers' packages, installed if missing; SkipTest naming what cannot be."""
    try:
        graphite_peer.ensure_packages()
    except graphite_peer.PeerUnavailable as e:
        reason = "graphite peers unavailable: %s" % e
        log("SKIP: " + reason)
        raise unittest.SkipTest(reason)


# --------------------------------------------------------------------------
# HTTP against either side


def get(base, path, params, timeout=60):
    """GET base+path?params; (status, parsed JSON or text)."""
    url = base + path + ("?" + urllib.parse.urlencode(params) if params else "")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            status, body = r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read().decode(errors="replace")
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


# --------------------------------------------------------------------------
# The points


def make_points(anchor):
    """The differential data set ending at `anchor` (a minute): returns
    (tcp_lines, udp_lines, points): newline-terminated lines as bytes and the
    (name, timestamp) of every point that is not NaN."""
    n = SPAN // STEP
    t0 = anchor - SPAN
    tcp, udp, points = [], [], []
    nan_spellings = ("nan", "NaN", "-nan")

    def emit(name, value, ts, over_udp=False):
        text = value if isinstance(value, str) else repr(float(value))
        line = ("%s %s %d\n" % (name, text, ts)).encode()
        (udp if over_udp else tcp).append(line)
        if isinstance(value, str) and value.lower().lstrip("-") == "nan":
            return
        points.append((name, ts))

    for hi, host in enumerate(HOSTS):
        for ai, app in enumerate(APPS):
            base = "diff.%s.%s." % (host, app)
            counter = 1000 * (hi + 1) + 77 * ai
            resets = {400 + 50 * hi + 25 * ai}
            if (host, app) == ("web2", "api"):
                resets.add(900)
            for i in range(n):
                ts = t0 + i * STEP
                # cpu: smooth, with NaN lines now and then
                if i % 50 == 17:
                    emit(base + "cpu", nan_spellings[(i // 50) % 3], ts)
                else:
                    emit(base + "cpu", round(50 + 30 * math.sin((i + 7 * hi + 3 * ai) / 23.0)
                                             + 10 * math.cos(i / 5.0), 3), ts)
                # requests: a counter with resets and, on web2, a hole
                counter = 0 if i in resets else counter + 5 + (i * 7 + hi * 3 + ai) % 13
                if not (host == "web2" and 700 <= i < 710):
                    emit(base + "requests", counter, ts)
                # latency: gaps, a hole on web1, odd points 3 s off the step
                if i % 7 != 3 and not (host == "web1" and 500 <= i < 560):
                    emit(base + "latency", 100 + ((i * 37 + hi * 11 + ai * 5) % 250) / 4.0, ts + (3 if i % 2 else 0))
                # errors: sparse, mostly 0
                if (i + hi) % 5 == 0:
                    emit(base + "errors", (i // 5 + hi + ai) % 4 // 3, ts)
                # temp: negative and positive; db1's over UDP
                emit(base + "temp", -20 + (i * 13 + hi * 7 + ai * 3) % 36 + 0.25, ts, over_udp=(host == "db1"))
                # free: large, with fractions
                emit(base + "free", 1e9 + i * 12345.678 + hi * 1e6 + ai * 0.125, ts)
    for i in range(0, n, 9):  # a series of NaN only: never created
        emit("diff.web1.shop.ghost", nan_spellings[i % 3], t0 + i * STEP)
    return tcp, udp, points


# --------------------------------------------------------------------------
# The target file


class TargetLine:
    def __init__(self, lineno, target, params):
        self.lineno, self.target, self.params = lineno, target, params

    def relative(self):
        return any(v == "now" or v.startswith("-") for k, v in self.params.items() if k in ("from", "until"))


def read_targets(path=TARGETS_FILE):
    """[TargetLine] of the file: TARGET [ | key=value ...]."""
    out = []
    with open(path) as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            target, params = line, {}
            if " | " in line:
                target, opts = line.rsplit(" | ", 1)
                for tok in opts.split():
                    k, sep, v = tok.partition("=")
                    if not sep or not k or not v:
                        raise ValueError("%s:%d: render parameter %r is not key=value" % (path, lineno, tok))
                    params[k] = v
            out.append(TargetLine(lineno, target.strip(), params))
    return out


UNITS = {"s": 1, "min": 60, "h": 3600, "d": 86400}
PLACEHOLDER = re.compile(r"\{(epoch|HH:MM_YYYYMMDD|YYYYMMDD)((?:[+-]\d+(?:s|min|h|d))*)\}")


def fill_time(value, anchor):
    """A TIME of the file with its {...} filled in from the data's anchor."""
    def one(m):
        t = anchor
        for sign, num, unit in re.findall(r"([+-])(\d+)(s|min|h|d)", m.group(2)):
            t += (1 if sign == "+" else -1) * int(num) * UNITS[unit]
        d = datetime.fromtimestamp(t, tz=timezone.utc)
        return {"epoch": str(t), "HH:MM_YYYYMMDD": d.strftime("%H:%M_%Y%m%d"), "YYYYMMDD": d.strftime("%Y%m%d")}[m.group(1)]
    out = PLACEHOLDER.sub(one, value)
    if "{" in out:
        raise ValueError("unknown time placeholder in %r" % value)
    return out


def approx_epoch(value, now):
    """Rough epoch of a filled-in TIME (for choosing how to synchronise requests)."""
    if value == "now":
        return now
    m = re.fullmatch(r"-(\d+)(s|min|h|d)", value)
    if m:
        return now - int(m.group(1)) * UNITS[m.group(2)]
    if re.fullmatch(r"\d{8}", value):
        return datetime.strptime(value, "%Y%m%d").replace(tzinfo=timezone.utc).timestamp()
    if re.fullmatch(r"\d\d:\d\d_\d{8}", value):
        return datetime.strptime(value, "%H:%M_%Y%m%d").replace(tzinfo=timezone.utc).timestamp()
    return float(value)


# --------------------------------------------------------------------------
# Comparing answers


def same_value(a, b):
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
        return a == b
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-12)


def diff_render(stele, web):
    """Differences between two /render JSON answers, as lines ([] when equal)."""
    if not isinstance(stele, list) or not isinstance(web, list):
        return ["not both JSON lists: stele %s / graphite-web %s" % (str(stele)[:300], str(web)[:300])]
    out = []
    sn = [s.get("target") for s in stele]
    wn = [s.get("target") for s in web]
    if sn != wn:
        out.append("series names differ:\n      stele:        %s\n      graphite-web: %s" % (sn, wn))
    for i, (s, w) in enumerate(zip(stele, web)):
        label = w.get("target")
        sp, wp = s.get("datapoints") or [], w.get("datapoints") or []
        bad = []
        if [p[1] for p in sp] != [p[1] for p in wp]:
            st = [p[1] for p in sp]
            wt = [p[1] for p in wp]
            bad.append("timestamps differ: stele %d points %s..%s, graphite-web %d points %s..%s" % (
                len(st), st[:1], st[-1:], len(wt), wt[:1], wt[-1:]))
        diffs = [(p[1], p[0], q[0]) for p, q in zip(sp, wp) if p[1] == q[1] and not same_value(p[0], q[0])]
        if diffs:
            bad.append("%d values differ (ts: stele vs graphite-web): %s%s" % (
                len(diffs), ", ".join("%s: %r vs %r" % d for d in diffs[:8]), " ..." if len(diffs) > 8 else ""))
        if "tags" in s and "tags" in w and s["tags"] != w["tags"]:
            bad.append("tags differ: stele %s, graphite-web %s" % (s["tags"], w["tags"]))
        if bad:
            out.append("series %d %r:\n      %s" % (i, label, "\n      ".join(bad)))
    return out


def diff_json(stele, web):
    return [] if stele == web else ["stele:        %s\n      graphite-web: %s" % (
        json.dumps(stele, sort_keys=True)[:1500], json.dumps(web, sort_keys=True)[:1500])]


def non_null_points(answer):
    return sum(1 for s in answer for v, _ in s.get("datapoints", []) if v is not None) if isinstance(answer, list) else -1


# --------------------------------------------------------------------------


class TargetFileTest(unittest.TestCase):
    """The target file itself: parseable and covering what it must."""

    def test_covers_every_function_glob_and_time_format(self):
        lines = read_targets()
        self.assertGreater(len(lines), 40)
        text = "\n".join(l.target for l in lines)
        times = "\n".join(" ".join("%s=%s" % kv for kv in l.params.items()) for l in lines)
        for fn in FUNCTIONS:
            self.assertRegex(text, r"(?m)(^|[(,])%s\(" % fn, "render_targets.txt has no %s(...)" % fn)
        for name, rx in GLOBS.items():
            self.assertRegex(text, rx, "render_targets.txt has no %s glob" % name)
        for name, rx in TIME_FORMATS.items():
            self.assertRegex(times, rx, "render_targets.txt has no from/until in the %s format" % name)
        for l in lines:  # every placeholder fills in
            for k in ("from", "until"):
                if k in l.params:
                    fill_time(l.params[k], 1_800_000_000)


class MetricsDiffTest(SteleTestCase):

    def setUp(self):
        require_peers()
        super().setUp()

    def test_same_points_render_the_same(self):
        targets = read_targets()
        stele = metrics_server(self.h)
        peer = graphite_peer.start(SCHEMAS, AGGREGATION, tmp=self.h.tmp, log_dir=self.h.logdir)
        self.addCleanup(peer.stop)

        anchor = int(time.time()) // 60 * 60
        tcp, udp, points = make_points(anchor)
        log("%d lines (%d over UDP), %d points that are not NaN, anchor %d" % (
            len(tcp) + len(udp), len(udp), len(points), anchor))
        base = stele.durable_points() or 0
        for port in (stele.graphite_port, peer.line_port):
            graphite_peer.send_tcp(port, b"".join(tcp)).close()
            graphite_peer.send_udp(port, udp)

        t = time.monotonic()
        stele.wait_durable(base + len(points), timeout=60)
        log("stele: %d points durable after %.1fs" % (len(points), time.monotonic() - t))
        peer.wait_persisted(points, timeout=120)
        log("carbon: every point in its whisper files after %.1fs" % (time.monotonic() - t))
        # Both render every point sent (and none of the NaN lines).
        whole = {"target": "diff.*.*.*", "format": "json", "from": anchor - SPAN - 1, "until": anchor}
        counts = {}
        for side, url in (("stele", stele.url), ("graphite-web", peer.url)):
            def rendered():
                status, answer = get(url, "/render", whole)
                counts[side] = non_null_points(answer) if status == 200 else "HTTP %d: %s" % (status, str(answer)[:300])
                return status == 200 and counts[side] >= len(points)
            try:
                wait_until(rendered, 10, "%s to render all %d points" % (side, len(points)), interval=0.5)
            except stelelib.WaitTimeout:
                pass  # reported just below, with both counts
        self.assertEqual(counts, {"stele": len(points), "graphite-web": len(points)},
                         "points rendered by diff.*.*.* (the whole data set)")

        failures = []
        for line in targets:
            failures += self.compare_target(stele.url, peer.url, line, anchor)
        failures += self.compare_find(stele.url, peer.url, anchor)
        log("compared %d targets and %d find/expand queries: %d differ" % (
            len(targets), len(FIND_QUERIES) + len(EXPAND_QUERIES), len(failures)))
        if failures:
            self.fail("Stele and graphite-web differ on %d requests:\n\n%s" % (len(failures), "\n\n".join(failures)))

    def compare_target(self, stele_url, web_url, line, anchor):
        params = {"target": line.target, "format": "json", "from": "{epoch-3h-1s}", "until": "{epoch}"}
        params.update(line.params)
        params = {k: fill_time(v, anchor) if k in ("from", "until") else v for k, v in params.items()}
        for _ in range(3):
            step = self.sync_step(params) if line.relative() else None
            if step:  # both requests inside one step of the clock, away from its edges
                into = time.time() % step
                if into < 0.3:
                    time.sleep(0.3 - into)
                elif step - into < 5:
                    time.sleep(step - into + 0.3)
            started = time.time()
            s_status, s_answer = get(stele_url, "/render", params)
            w_status, w_answer = get(web_url, "/render", params)
            if not step or int(started // step) == int(time.time() // step):
                break
            log("line %d: the requests straddled a %d s step, again" % (line.lineno, step))
        head = "render_targets.txt:%d %s\n    GET /render?%s" % (line.lineno, line.target, urllib.parse.urlencode(params))
        if w_status != 200:
            return ["%s\n    graphite-web answered %d: %s (fix the target)" % (head, w_status, str(w_answer)[:500])]
        if s_status != 200:
            return ["%s\n    stele answered %d: %s" % (head, s_status, str(s_answer)[:500])]
        d = diff_render(s_answer, w_answer)
        return ["%s\n    %s" % (head, "\n    ".join(d))] if d else []

    @staticmethod
    def sync_step(params):
        """The archive step the window reads: 60 s past the 10 s archive's 6 h."""
        now = time.time()
        span = now - approx_epoch(params["from"], now)
        return 60 if span > 6 * 3600 - 120 else STEP

    def compare_find(self, stele_url, web_url, anchor):
        out = []
        window = {"from": anchor - SPAN - 1, "until": anchor}
        for path, queries in (("/metrics/find", FIND_QUERIES), ("/metrics/expand", EXPAND_QUERIES)):
            for q in queries:
                params = dict(window, query=q)
                s_status, s_answer = get(stele_url, path, params)
                w_status, w_answer = get(web_url, path, params)
                head = "GET %s?%s" % (path, urllib.parse.urlencode(params))
                if w_status != 200:
                    out.append("%s\n    graphite-web answered %d: %s" % (head, w_status, str(w_answer)[:300]))
                elif s_status != 200:
                    out.append("%s\n    stele answered %d: %s" % (head, s_status, str(s_answer)[:300]))
                else:
                    d = diff_json(normalise_find(s_answer), normalise_find(w_answer))
                    if d:
                        out.append("%s\n    %s" % (head, "\n    ".join(d)))
        return out


FIND_QUERIES = ("diff", "diff.*", "diff.web?", "diff.[a-z]b1.*", "diff.{web1,db1}.api.*", "diff.web1.shop.cpu",
                "diff.web1.shop.ghost", "diff.nosuch.*")
EXPAND_QUERIES = ("diff.*.shop.cpu", "diff.web?.*", "diff.{web1,db1}.api.l*")


def normalise_find(answer):
    """/metrics/find's nodes in id order (0/1 and false/true alike); expand's answer as is."""
    if isinstance(answer, list):
        return sorted(({k: int(v) if isinstance(v, bool) else v for k, v in n.items()} for n in answer),
                      key=lambda n: str(n.get("id")))
    return answer


if __name__ == "__main__":
    stelelib.main()
