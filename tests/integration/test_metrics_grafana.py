"""Metrics, Grafana's Graphite data source: the requests Grafana's browser
code sends to a Graphite server, byte for byte, and the shape of answer it
needs, against `stele server --graphite-listen` — and against graphite-web
1.1.8 (tests/peers/graphite_peer.py), which shows the fixture is right.

Fixture: grafana/grafana, public/app/plugins/datasource/graphite/datasource.ts
at commit 46831bf7255dac69fc13e7e1333af82a37691998 (the copy read while
writing this; a 12.x/13.x-era version: it has graphiteBackendMode and the
aliasSub refId wrapping; the graphite plugin's package.json read then was
12.2.0-pre at 9f1335b4 and 13.2.1 at 024436d4). What it does:

- query(): every target T of refId R becomes aliasSub(T, "(^.*$)", "\\1 R")
  (a JS template literal, so the server sees \\1 as backslash-one); then
  buildGraphiteParams() makes `target=<encodeURIComponent(T')>` per target
  and from, until, format=json, maxDataPoints (translateTime: now-1h -> -1h,
  now -> now), joined with & and POSTed to /render as
  application/x-www-form-urlencoded. convertResponseToDataFrames() takes
  `data.series || data` (an array), splits each `target` on spaces and pops
  the refId, multiplies datapoints[i][1] (seconds) by 1000.
- testDatasource(): query() of target constantLine(100), refId A, range
  now-1h..now, maxDataPoints 300; success is any 2xx the query accepts.
- requestMetricFind(): POST /metrics/find with from/until (epoch seconds) in
  the URL and the body `query=<query>` (not encoded), form content type; uses
  each node's `text` and `expandable`. (Older Grafana: GET /metrics/find?query=*.)
- requestMetricExpand(): GET /metrics/expand?query=..&from&until, uses `results`.
- getFuncDefs(): GET /functions as text, replaces `"default": Infinity` with
  1e9999 (graphite-web's bug 2609), JSON.parse, and parseFuncDefs() reads each
  function's name, group, description and params[{name, type, required, ...}].
- getVersion(): GET /version, kept when `new SemVer(data)` is valid.

Run: STELE_BIN=build/stele python3 tests/integration/test_metrics_grafana.py -v
"""

import json
import os
import re
import sys
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "peers"))

import graphite_peer  # noqa: E402
import stelelib  # noqa: E402
import test_metrics_diff as diff  # noqa: E402  (MetricsServer, SCHEMAS; its tests are not collected here)
from stelelib import SteleTestCase, log  # noqa: E402

HOSTS = ("web1", "web2", "db1")
STEP = 10
POINTS = 360  # one hour
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def grafana_points(now):
    """grafana.<host>.cpu every 10 s for the hour before `now`: {name: {ts: value}}."""
    end = now - now % STEP
    return {"grafana.%s.cpu" % h: {end - (POINTS - j) * STEP: float((j * 7 + hi * 13) % 50 + hi)
                                   for j in range(POINTS)} for hi, h in enumerate(HOSTS)}


def lines_of(points):
    return "".join("%s %r %d\n" % (n, v, ts) for n, pts in sorted(points.items()) for ts, v in sorted(pts.items())).encode()


def encode_uri_component(s):
    """JavaScript's encodeURIComponent."""
    return urllib.parse.quote(s, safe="-_.!~*'()")


def grafana_target(target, ref_id):
    """query()'s wrapping: aliasSub(T, "(^.*$)", "\\1 R") -- backslash-one as the server sees it."""
    return 'aliasSub(%s, "(^.*$)", "\\1 %s")' % (target, ref_id)


def grafana_render_body(targets, from_="-1h", until="now", max_data_points=None):
    """buildGraphiteParams() joined with &: targets (refId A, B, ... in order), then
    from, until, format=json and maxDataPoints (cacheTimeout unset is left out)."""
    params = ["target=" + encode_uri_component(grafana_target(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[i]))
              for i, t in enumerate(targets)]
    for key, value in (("from", from_), ("until", until), ("format", "json"), ("maxDataPoints", max_data_points)):
        if value:
            params.append("%s=%s" % (key, encode_uri_component(str(value))))
    return "&".join(params)


def request(method, url, body=None, headers=None, timeout=30):
    """(status, content type, body text)."""
    req = urllib.request.Request(url, data=body.encode() if body is not None else None, method=method,
                                 headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode(errors="replace")


def strict_json(text):
    """JSON.parse: no NaN or Infinity."""
    def refuse(name):
        raise ValueError("JSON.parse rejects %s" % name)
    return json.loads(text, parse_constant=refuse)


class GrafanaShapes:
    """The requests and the checks; a subclass provides self.url (the server
    Grafana's data source URL points at) and self.points (what was sent)."""

    url = None
    points = None

    def post_render(self, targets, **kw):
        status, ctype, text = request("POST", self.url + "/render", grafana_render_body(targets, **kw), FORM)
        self.assertEqual(status, 200, "POST /render %s: %s" % (targets, text[:500]))
        self.assertIn("json", ctype, "Content-Type of /render format=json")
        data = strict_json(text)
        series = data.get("series", data) if isinstance(data, dict) else data
        self.assertIsInstance(series, list, "convertResponseToDataFrames needs an array: %s" % text[:300])
        return series

    def check_series(self, s, ref_id, max_points):
        """One series as convertResponseToDataFrames reads it; returns (name, {ts: value})."""
        self.assertIsInstance(s.get("target"), str, s)
        parts = s["target"].split(" ")
        self.assertGreater(len(parts), 1, "target %r lost the refId aliasSub appended" % s["target"])
        self.assertEqual(parts[-1], ref_id, s["target"])
        dps = s.get("datapoints")
        self.assertIsInstance(dps, list)
        self.assertLessEqual(len(dps), max_points, "%s: more datapoints than maxDataPoints" % s["target"])
        for p in dps:
            self.assertTrue(isinstance(p, list) and len(p) == 2, p)
            self.assertTrue(p[0] is None or (isinstance(p[0], (int, float)) and not isinstance(p[0], bool)), p)
            self.assertTrue(isinstance(p[1], int) and not isinstance(p[1], bool), "timestamp %r is not whole seconds" % (p,))
        ts = [p[1] for p in dps]
        self.assertEqual(ts, sorted(ts), "timestamps out of order")
        if len(ts) > 2:
            self.assertEqual(len({b - a for a, b in zip(ts, ts[1:])}), 1, "timestamps not evenly spaced")
        return " ".join(parts[:-1]), {p[1]: p[0] for p in dps}

    def test_panel_query_is_a_form_post_of_aliasSub_targets(self):
        now = time.time()
        series = self.post_render(["grafana.*.cpu", "sumSeries(grafana.*.cpu)"], max_data_points=1000)
        names = {}
        for s in series:
            ref = s.get("target", "").split(" ")[-1]
            name, values = self.check_series(s, ref, 1000)
            names.setdefault(ref, []).append(name)
            ts = [t for t in values]
            self.assertGreaterEqual(min(ts), now - 3600 - 2 * STEP, name)
            self.assertLessEqual(max(ts), now + STEP, name)
            if ref == "A":  # raw points: what was sent, at its timestamps
                sent = self.points[name]
                got = {t: v for t, v in values.items() if v is not None}
                self.assertGreater(len(got), POINTS - 5, "%s: %d of %d points" % (name, len(got), POINTS))
                self.assertEqual({t: sent[t] for t in got}, got, name)
            else:
                expect = {t: sum(p[t] for p in self.points.values()) for t in values if values[t] is not None}
                self.assertEqual({t: v for t, v in values.items() if v is not None}, expect)
        self.assertEqual(sorted(names.get("A", [])), sorted(self.points), "series of refId A")
        self.assertEqual(names.get("B"), ["sumSeries(grafana.*.cpu)"], "series of refId B")

    def test_panel_query_is_consolidated_to_maxDataPoints(self):
        series = self.post_render(["grafana.web1.cpu"], max_data_points=100)
        self.assertEqual(len(series), 1)
        name, values = self.check_series(series[0], "A", 100)
        self.assertEqual(name, "grafana.web1.cpu")
        sent = self.points[name].values()
        got = [v for v in values.values() if v is not None]
        self.assertGreater(len(got), 30)
        self.assertTrue(all(min(sent) <= v <= max(sent) for v in got), "consolidated values outside what was sent")

    def test_test_datasource_renders_constantLine_100(self):
        series = self.post_render(["constantLine(100)"], max_data_points=300)
        self.assertEqual(len(series), 1, series)
        _, values = self.check_series(series[0], "A", 300)
        got = [v for v in values.values() if v is not None]
        self.assertTrue(got and all(v == 100 for v in got), values)

    def test_metric_find_is_a_form_post_with_the_range_in_the_url(self):
        now = int(time.time())
        url = self.url + "/metrics/find?" + urllib.parse.urlencode({"from": now - 3600, "until": now})
        for query, want in (("grafana.*", {h: True for h in HOSTS}),
                            ("grafana.web1.*", {"cpu": False}),
                            ("grafana.{web1,db1}.*", {"cpu": False}),
                            ("grafana.nosuch.*", {})):
            status, ctype, text = request("POST", url, "query=" + query, FORM)  # not encoded, as Grafana sends it
            self.assertEqual(status, 200, "POST /metrics/find query=%s: %s" % (query, text[:300]))
            nodes = strict_json(text)
            self.assertIsInstance(nodes, list, text[:300])
            got = {}
            for n in nodes:
                self.assertIsInstance(n.get("text"), str, n)
                self.assertIn("expandable", n, n)
                got[n["text"]] = bool(n["expandable"])
            self.assertEqual(got, want, "POST /metrics/find query=%s" % query)

    def test_metric_find_get_of_the_root(self):
        status, _, text = request("GET", self.url + "/metrics/find?query=*")
        self.assertEqual(status, 200, text[:300])
        nodes = {n["text"]: bool(n["expandable"]) for n in strict_json(text)}
        self.assertEqual(nodes.get("grafana"), True, nodes)

    def test_metric_expand(self):
        now = int(time.time())
        q = urllib.parse.urlencode({"query": "grafana.*.cpu", "from": now - 3600, "until": now})
        status, _, text = request("GET", self.url + "/metrics/expand?" + q, headers=FORM)
        self.assertEqual(status, 200, text[:300])
        self.assertEqual(sorted(strict_json(text)["results"]), sorted(self.points))

    def test_functions_parse_after_grafanas_infinity_fix(self):
        status, _, text = request("GET", self.url + "/functions")
        self.assertEqual(status, 200, text[:300])
        defs = strict_json(re.sub(r'"default": ?Infinity', '"default": 1e9999', text))
        self.assertIsInstance(defs, dict)
        for fn in diff.FUNCTIONS:
            self.assertIn(fn, defs, "/functions lacks %s" % fn)
            d = defs[fn]
            self.assertEqual(d.get("name"), fn)
            self.assertIsInstance(d.get("group"), str, fn)
            self.assertIsInstance(d.get("params"), list, fn)
            for p in d["params"]:
                self.assertIsInstance(p.get("name"), str, (fn, p))
                self.assertIsInstance(p.get("type"), str, (fn, p))
        self.assertEqual(defs["aliasSub"]["params"][0]["type"], "seriesList")
        self.assertEqual([p["name"] for p in defs["aliasSub"]["params"]], ["seriesList", "search", "replace"])

    def test_version_is_semver(self):
        status, _, text = request("GET", self.url + "/version")
        self.assertEqual(status, 200, text[:300])
        try:
            version = strict_json(text)
        except ValueError:
            version = text
        self.assertIsInstance(version, str)
        self.assertRegex(version.strip(), SEMVER)


class GrafanaSteleTest(GrafanaShapes, SteleTestCase):
    """Against `stele server --graphite-listen`."""

    def setUp(self):
        super().setUp()
        server = diff.metrics_server(self.h)
        self.url = server.url
        self.points = grafana_points(int(time.time()))
        base = server.durable_points() or 0
        graphite_peer.send_tcp(server.graphite_port, lines_of(self.points)).close()
        server.wait_durable(base + sum(len(p) for p in self.points.values()), timeout=30)


class GrafanaGraphiteWebTest(GrafanaShapes, unittest.TestCase):
    """Against graphite-web 1.1.8 over carbon-cache 1.1.7: the fixture's reference."""

    @classmethod
    def setUpClass(cls):
        diff.require_peers()
        cls.peer = graphite_peer.start(diff.SCHEMAS, diff.AGGREGATION)
        try:
            cls.url = cls.peer.url
            cls.points = grafana_points(int(time.time()))
            graphite_peer.send_tcp(cls.peer.line_port, lines_of(cls.points)).close()
            cls.peer.wait_persisted([(n, t) for n, pts in cls.points.items() for t in pts], timeout=60)
        except BaseException:
            cls.peer.stop()
            raise
        log("graphite-web at %s" % cls.url)

    @classmethod
    def tearDownClass(cls):
        cls.peer.stop()


if __name__ == "__main__":
    stelelib.main()
