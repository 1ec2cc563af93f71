"""Core platform, API surface: spec validation (422 naming the fields), the
event streams (Marathon /v2/events, native stream resumed with
Last-Event-ID) and the CLI against a running server.

Run: STELE_BIN=build/stele python3 tests/integration/test_api.py -v
Task ports: 31900-31979.
"""

import json
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import stelelib  # noqa: E402
from stelelib import STELE, SteleTestCase, sample_app, wait_until  # noqa: E402

APP = "/web"


class ApiTest(SteleTestCase):

    def start_one_agent(self, ports):
        self.server = self.h.server()
        self.api = self.server.api
        self.h.agent(self.server, "agentA", "hostA", ports, agent_id="agent-a")
        wait_until(lambda: [n for n in self.api.get("/api/v1/nodes")["nodes"] if n["state"] == "active"], 15,
                   "agent active")

    def assert_invalid(self, method, path, body, fields):
        status, doc = self.api.call(method, path, body)
        self.assertEqual(status, 422, "%s %s %s -> %s %s" % (method, path, json.dumps(body), status, doc))
        self.assertIsInstance(doc, dict)
        self.assertTrue(doc.get("message"), doc)
        paths = [d["path"] for d in doc.get("details", [])]
        for f in fields:
            self.assertIn(f, paths, "%s %s: details %s do not name %s" % (method, path, doc.get("details"), f))
        for d in doc["details"]:
            self.assertTrue(d.get("errors") and all(isinstance(e, str) and e for e in d["errors"]), d)
        return doc

    def test_11_invalid_specs_are_422_naming_the_fields(self):
        self.server = self.h.server()
        self.api = self.server.api
        cases = [
            ({"id": "/bad", "cmd": "x", "cpus": -1}, ["/cpus"]),
            ({"id": "/bad", "cmd": "x", "instances": "many"}, ["/instances"]),
            ({"id": "/bad", "cmd": "x", "cpus": -1, "mem": "lots", "instances": -2,
              "healthChecks": [{"protocol": "FOO"}], "constraints": [["hostname", "NOPE"]]},
             ["/cpus", "/mem", "/instances", "/healthChecks/0/protocol", "/constraints/0/1"]),
            ({"id": "bad id!", "cmd": "x"}, ["/id"]),
        ]
        for body, fields in cases:
            for path in ("/v2/apps", "/api/v1/apps"):
                self.assert_invalid("POST", path, body, fields)
        # Marathon needs something to run; the native API's {"id"} alone is
        # `stele create` (an app awaiting its first push), tested elsewhere.
        self.assert_invalid("POST", "/v2/apps", {"id": "/bad"}, ["/cmd"])
        # PUT creates a missing app in Marathon; an invalid one is refused the same way.
        self.assert_invalid("PUT", "/v2/apps/bad", {"cmd": "x", "cpus": -1}, ["/cpus"])
        self.assert_invalid("PUT", "/api/v1/apps/bad", {"cmd": "x", "cpus": -1, "mem": -5}, ["/cpus", "/mem"])
        # Malformed JSON is a 4xx too.
        status, doc = self.api.call("POST", "/v2/apps", b"{nope")
        self.assertEqual(status, 400, doc)
        # Nothing was created.
        self.assertEqual(self.api.call("GET", "/v2/apps/bad")[0], 404)
        self.assertEqual(self.api.call("GET", "/api/v1/apps/bad")[0], 404)
        self.assertEqual(self.api.get("/v2/apps")["apps"], [])
        self.assertEqual(self.api.get("/api/v1/apps")["apps"], [])
        self.assertEqual(self.api.get("/v2/deployments"), [])
        self.assertEqual([e for e in self.api.get("/api/v1/events?since=0")["events"] if e["type"] == "app_created"], [])

    def test_12a_marathon_event_stream(self):
        self.start_one_agent("31900-31919")
        sse = self.h.sse(self.api, "/v2/events")
        time.sleep(0.2)
        self.api.call("POST", "/v2/apps", sample_app(APP, 1), expect=201)
        seen = sse.wait_for(lambda e: e["event"] == "status_update_event" and e["data"].get("taskStatus") == "TASK_RUNNING",
                            30, "status_update_event TASK_RUNNING")
        running = seen[-1]["data"]
        self.assertEqual(running["appId"], APP)
        self.assertEqual(running["taskId"], "web-r1.0.1")
        self.assertEqual(running["slaveId"], "agent-a")
        self.assertEqual(running["eventType"], "status_update_event")
        self.assertTrue(running["ports"] and 31900 <= running["ports"][0] <= 31919, running)
        seen += sse.wait_for(lambda e: e["event"] == "deployment_success", 30, "deployment_success")
        types = [e["event"] for e in seen]
        self.assertIn("api_post_event", types)
        self.assertIn("health_status_changed_event", types)
        health = [e["data"] for e in seen if e["event"] == "health_status_changed_event"]
        self.assertTrue(any(h["alive"] and h["taskId"] == "web-r1.0.1" for h in health), health)
        self.assertLess(types.index("api_post_event"), types.index("status_update_event"))
        for e in seen:
            self.assertEqual(e["data"]["eventType"], e["event"])
            self.assertTrue(e["id"] and e["id"].isdigit(), e)

    def test_12b_native_stream_resumes_without_gaps_or_duplicates(self):
        self.start_one_agent("31920-31939")
        first_id = self.api.get("/api/v1/events?since=0")["events"][-1]["id"]
        got = []
        sse = self.h.sse(self.api, "/api/v1/events/stream")
        time.sleep(0.2)
        self.api.call("POST", "/v2/apps", sample_app(APP, 3), expect=201)
        # Read into the middle of the deployment, then drop the connection.
        got += sse.wait_for(lambda e: e["event"] == "task_status" and e["data"].get("state") == "running",
                            30, "a task running")
        sse.close()
        last = got[-1]["id"]
        # While disconnected: the deployment goes on, and a scale follows.
        self.wait_healthy(self.api, APP, 3)
        wait_until(lambda: self.api.app(APP)["deployment"] is None, 10, "first deployment done")
        self.api.post("/api/v1/apps/web/scale", {"instances": 4})
        time.sleep(0.3)
        # Resume with Last-Event-ID.
        sse2 = self.h.sse(self.api, "/api/v1/events/stream", headers={"Last-Event-ID": last})
        more = sse2.wait_for(lambda e: e["event"] == "deployment_succeeded" and e["data"]["deployment"]["toInstances"] == 4,
                             30, "the scale's deployment_succeeded")
        self.wait_healthy(self.api, APP, 4)
        more += sse2.drain(0.5)
        self.assertTrue(any(e["event"] == "deployment_succeeded" and e["data"]["deployment"]["toInstances"] == 3 for e in more),
                        "the resumed stream must replay what happened while disconnected")
        ids = [int(e["id"]) for e in got + more]
        self.assertEqual(len(ids), len(set(ids)), "duplicate event ids across the resume: %s" % ids)
        self.assertEqual(ids, sorted(ids), "event ids out of order")
        stored = self.api.get("/api/v1/events?since=%d&limit=10000" % first_id)["events"]
        stored_ids = [e["id"] for e in stored if e["id"] <= ids[-1]]
        self.assertEqual(ids, stored_ids, "streamed ids (resumed after %s) differ from the stored sequence" % last)
        for e in got + more:
            self.assertEqual(e["data"]["id"], int(e["id"]))
            self.assertEqual(e["data"]["type"], e["event"])
        # ?since= resumes the same way.
        sse3 = self.h.sse(self.api, "/api/v1/events/stream?since=%s" % last)
        again = sse3.wait_for(lambda e: int(e["id"]) == ids[-1], 10, "replay up to event %d" % ids[-1])
        self.assertEqual([int(e["id"]) for e in again], [i for i in ids if i > int(last)])

    def test_14_token_required_off_loopback(self):
        """A listener off loopback needs the data dir's token for every change and
        for agents; reads stay open. (Traffic still goes to 127.0.0.1 only.)"""
        port = stelelib.free_port()
        data = os.path.join(self.h.tmp, "open-server")
        # Its own forward and graphite ports: the defaults may be taken by another Stele on this machine.
        self.h.spawn("open-server", [STELE, "server", "--router-listen", "off", "--data-dir", data,
                                     "--listen", "0.0.0.0:%d" % port]
                     + stelelib.forward_flags(stelelib.free_port(), {}) + stelelib.metrics_flags(stelelib.free_port(), {}))
        api = stelelib.Api("http://127.0.0.1:%d" % port)
        wait_until(api.ping, 15, "server on 0.0.0.0 to answer /ping")
        with open(os.path.join(data, "token")) as f:
            token = f.read().strip()
        self.assertEqual(api.call("GET", "/v2/apps")[0], 200)
        status, doc = api.call("POST", "/v2/apps", sample_app("/locked", 0))
        self.assertEqual(status, 401, doc)
        self.assertIn("token", doc["message"])
        status, doc = stelelib.http("POST", api.url + "/v2/apps", sample_app("/locked", 0),
                                    headers={"Authorization": "Bearer wrong"})
        self.assertEqual(status, 401, doc)
        status, doc = stelelib.http("POST", api.url + "/v2/apps", sample_app("/locked", 0),
                                    headers={"Authorization": "Bearer " + token})
        self.assertEqual(status, 201, doc)
        registration = {"id": "intruder", "hostname": "h", "resources": {"cpus": 1, "mem": 64, "disk": 1}}
        status, doc = stelelib.http("POST", api.url + "/api/v1/agent/register", registration)
        self.assertEqual(status, 401, doc)
        self.assertEqual(api.get("/api/v1/nodes")["nodes"], [])

    def test_15_artifacts_are_stored_by_verified_digest(self):
        """PUT /api/v1/artifacts/{sha256}: the server checks the digest; GET serves the bytes."""
        import hashlib
        self.server = self.h.server()
        api = self.server.api
        blob = os.urandom(100000)
        digest = hashlib.sha256(blob).hexdigest()
        wrong = hashlib.sha256(b"other").hexdigest()
        status, doc = api.call("PUT", "/api/v1/artifacts/" + wrong, blob)
        self.assertEqual(status, 422, doc)
        self.assertIn(wrong, doc["message"])
        self.assertIn(digest, doc["message"])
        self.assertEqual(api.call("GET", "/api/v1/artifacts/" + wrong)[0], 404)
        self.assertEqual(api.call("PUT", "/api/v1/artifacts/not-a-digest", blob)[0], 400)
        self.assertEqual(api.call("PUT", "/api/v1/artifacts/" + digest, blob)[0], 201)
        self.assertEqual(api.call("PUT", "/api/v1/artifacts/" + digest, blob)[0], 200)  # already there
        import urllib.request
        with urllib.request.urlopen(api.url + "/api/v1/artifacts/" + digest, timeout=5) as r:
            self.assertEqual(r.read(), blob)

    def test_13_cli_shows_the_app(self):
        self.start_one_agent("31940-31959")
        self.api.call("POST", "/v2/apps", sample_app(APP, 2), expect=201)
        tasks = self.wait_healthy(self.api, APP, 2)
        ids = sorted(t["id"] for t in tasks)
        r = self.h.run([STELE, "--api", self.server.url, "ps", "--json"])
        doc = json.loads(r.stdout)
        self.assertEqual(sorted(t["id"] for t in doc["tasks"] if t["appId"] == APP), ids)
        r = self.h.run([STELE, "ps", APP, "--api", self.server.url])
        for tid in ids:
            self.assertIn(tid, r.stdout)
        self.assertIn("healthy", r.stdout)
        r = self.h.run([STELE, "--api", self.server.url, "apps"])
        line = [l for l in r.stdout.splitlines() if l.split() and l.split()[0] == APP]
        self.assertEqual(len(line), 1, r.stdout)
        self.assertIn("2/2", line[0])
        r = self.h.run([STELE, "--api", self.server.url, "apps", "--json"])
        apps = json.loads(r.stdout)["apps"]
        self.assertEqual([(a["id"], a["tasksHealthy"], a["instances"]) for a in apps], [(APP, 2, 2)])
        # A client error is one clear line and a non-zero exit.
        r = self.h.run([STELE, "--api", self.server.url, "app", "/nope"], check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("nope", r.stderr + r.stdout)


if __name__ == "__main__":
    stelelib.main()
