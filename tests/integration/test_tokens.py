"""API tokens with roles, the agents' join token and the actor on events
(docs/api.md "Tokens"): a server started with --require-token on loopback,
tokens made with `stele tokens`, each role's reach, revocation, and agents
with a wrong and the right join token.

Run: STELE_BIN=build/stele python3 tests/integration/test_tokens.py -v
Ports: API 32600, forward 32601, graphite 32602, router 32603, tasks 32610-32619.
"""

import json
import os
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import stelelib  # noqa: E402
from stelelib import STELE, Api, SteleTestCase, http, wait_until  # noqa: E402

API_PORT, FORWARD_PORT, GRAPHITE_PORT, ROUTER_PORT = 32600, 32601, 32602, 32603
TASK_PORTS = "32610-32619"
JOIN = "join-secret-for-the-test"
APP = "/tok"


class TokensTest(SteleTestCase):

    def start_server(self):
        self.data = os.path.join(self.h.tmp, "server")
        argv = [STELE, "server", "--data-dir", self.data, "--listen", "127.0.0.1:%d" % API_PORT,
                "--require-token", "--join-token", JOIN,
                "--agent-timeout", str(stelelib.AGENT_TIMEOUT), "--deploy-timeout", str(stelelib.DEPLOY_TIMEOUT),
                "--forward-listen", "127.0.0.1:%d" % FORWARD_PORT,
                "--graphite-listen", "127.0.0.1:%d" % GRAPHITE_PORT,
                "--router-listen", "127.0.0.1:%d" % ROUTER_PORT]
        self.server = self.h.spawn("server", argv)
        self.url = "http://127.0.0.1:%d" % API_PORT
        self.api = Api(self.url)
        wait_until(lambda: self.api.ping() or self.dead(self.server), 15, "server to answer /ping")
        with open(os.path.join(self.data, "token")) as f:
            self.boot = f.read().strip()

    def dead(self, proc):
        if not proc.alive():
            raise AssertionError("%s exited:\n%s" % (proc.name, proc.output()[-3000:]))
        return False

    def start_agent(self, name, join_flags):
        root = os.path.join(self.h.tmp, name)
        os.makedirs(root, exist_ok=True)
        self.h.task_roots.append(root)
        argv = [STELE, "agent", "--server", self.url, "--data-dir", os.path.join(root, "agent"),
                "--hostname", name, "--agent-id", "agent-" + name, "--ports", TASK_PORTS,
                "--resources", "cpus=4,mem=4096,disk=10000",
                "--agent-timeout", str(stelelib.AGENT_TIMEOUT), "--recovery-timeout", "60",
                "--advertise-addr", "127.0.0.1", "--metrics-interval", "0"] + join_flags
        return self.h.spawn(name, argv)

    def call(self, method, path, token=None, body=None):
        headers = {"Authorization": "Bearer " + token} if token else {}
        return http(method, self.url + path, body, headers=headers)

    def cli(self, args, token, check=True):
        return self.h.run([STELE, "--api", self.url, "--token", token] + args, check=check)

    def git(self, *args, cwd=None, check=True):
        """Stock git with a clean config and no prompts."""
        home = self.h.path("home", "x")[:-2]
        os.makedirs(home, exist_ok=True)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "GIT_CONFIG_NOSYSTEM": "1",
               "GIT_TERMINAL_PROMPT": "0", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
        r = subprocess.run(["git"] + list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
                           stdin=subprocess.DEVNULL)
        with open(os.path.join(self.h.logdir, "git.log"), "a") as f:
            f.write("$ git %s\n[exit %d]\n%s%s\n" % (" ".join(args), r.returncode, r.stdout, r.stderr))
        if check and r.returncode != 0:
            raise AssertionError("git %s exited %d:\n%s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
        return r

    def check_git(self, viewer, deployer):
        """Pushing needs the deployer role, fetching the viewer role, and a token at all."""
        work = os.path.dirname(self.h.path("work", "README"))
        self.git("init", "-q", "-b", "main", work)
        with open(os.path.join(work, "stele.json"), "w") as f:
            f.write('{"cmd": "exec sleep 600", "branch": "production"}\n')
        self.git("add", "-A", cwd=work)
        self.git("commit", "-q", "-m", "first", cwd=work)
        url = lambda token: "http://git:%s@127.0.0.1:%d/git/tok.git" % (token, API_PORT)  # noqa: E731
        self.assertNotEqual(self.git("ls-remote", "http://127.0.0.1:%d/git/tok.git" % API_PORT, check=False).returncode, 0)
        r = self.git("push", url(viewer), "main", cwd=work, check=False)
        self.assertNotEqual(r.returncode, 0, r.stderr)
        self.assertIn("403", r.stderr)
        self.git("push", url(deployer), "main", cwd=work)
        self.assertIn("refs/heads/main", self.git("ls-remote", url(viewer)).stdout)
        # A push of the deploy branch makes a release whose event names the pusher's token.
        since = self.call("GET", "/api/v1/events?limit=1", viewer)[1]["events"][-1]["id"]
        self.git("push", url(deployer), "main:production", cwd=work)
        created = wait_until(lambda: self.call("GET", "/api/v1/events?type=release_created&since=%d" % since,
                                               viewer)[1]["events"], 20, "the pushed release's event")
        self.assertEqual(created[0]["actor"], "token:ci", created)

    def nodes(self):
        return self.call("GET", "/api/v1/nodes", self.boot)[1]["nodes"]

    def test_roles_join_token_and_actor(self):
        self.start_server()

        # --require-token on loopback: an anonymous change is refused, reads are not.
        status, doc = self.call("POST", "/api/v1/apps", None, {"id": APP, "cmd": "exec sleep 600"})
        self.assertEqual(status, 401, doc)
        self.assertEqual(self.call("GET", "/api/v1/apps")[0], 200)

        # The bootstrap token is an admin: it makes a viewer (CLI, JSON) and a deployer (CLI, text).
        r = self.cli(["tokens", "create", "watcher", "--role", "viewer", "--json"], self.boot)
        created = json.loads(r.stdout)
        self.assertEqual((created["name"], created["role"]), ("watcher", "viewer"))
        self.assertTrue(created["token"].startswith("stl_") and len(created["token"]) == 36, created)
        self.assertEqual(created["createdBy"], "token:bootstrap")
        viewer = created["token"]
        r = self.cli(["tokens", "create", "ci", "--role", "deployer"], self.boot)
        self.assertIn("not", r.stderr)  # the warning: shown only once
        secrets = [w for w in r.stdout.split() if w.startswith("stl_")]
        self.assertEqual(len(secrets), 1, r.stdout)
        deployer = secrets[0]

        # Bad input and duplicates.
        status, doc = self.call("POST", "/api/v1/tokens", self.boot, {"name": "x", "role": "root"})
        self.assertEqual(status, 422, doc)
        self.assertEqual([d["path"] for d in doc["details"]], ["/role"])
        self.assertIn("admin, deployer, viewer", doc["details"][0]["errors"][0])
        status, doc = self.call("POST", "/api/v1/tokens", self.boot, {"name": "Not OK", "role": "viewer"})
        self.assertEqual((status, [d["path"] for d in doc["details"]]), (422, ["/name"]), doc)
        self.assertEqual(self.call("POST", "/api/v1/tokens", self.boot, {"name": "ci", "role": "viewer"})[0], 409)
        self.assertEqual(self.call("GET", "/api/v1/tokens", deployer)[0], 403)  # tokens are admin only

        # An agent with a wrong join token is refused and says so; the right one registers.
        bad = self.start_agent("badhost", ["--join-token", "not-the-join-token"])
        wait_until(lambda: "server refused the join token" in bad.output() or self.dead(bad), 15,
                   "the agent to log that the join token was refused")
        self.assertEqual(self.nodes(), [])
        self.assertTrue(bad.alive(), "a refused agent keeps retrying, it does not exit")
        bad.stop()
        self.start_agent("goodhost", ["--join-token", JOIN])
        wait_until(lambda: [n for n in self.nodes() if n["state"] == "active" and n["hostname"] == "goodhost"], 15,
                   "the agent with the right join token to register")

        # An app made with the admin token, running one instance.
        spec = {"id": APP, "cmd": "exec sleep 600", "cpus": 0.1, "mem": 32, "instances": 1}
        status, doc = self.call("POST", "/api/v1/apps", self.boot, spec)
        self.assertIn(status, (200, 201), doc)
        def settled():
            a = self.call("GET", "/api/v1/apps/tok", viewer)[1]["app"]
            return a["tasksRunning"] == 1 and a["deployment"] is None
        wait_until(settled, 30, "one running instance, deployment done")

        # The viewer reads but cannot change anything.
        status, doc = self.call("GET", "/api/v1/apps", viewer)
        self.assertEqual(status, 200, doc)
        self.assertEqual([a["id"] for a in doc["apps"]], [APP])
        status, doc = self.call("POST", "/api/v1/apps/tok/scale", viewer, {"instances": 3})
        self.assertEqual(status, 403, doc)
        self.assertIn("deployer", doc["message"])
        status, doc = self.call("PUT", "/api/v1/apps/tok", viewer, dict(spec, cmd="exec sleep 700"))
        self.assertEqual(status, 403, doc)
        self.assertEqual(self.call("POST", "/api/v1/apps/tok/restart", viewer, {})[0], 403)
        self.assertEqual(self.call("POST", "/api/v1/apps/tok/deploy", viewer, {"release": 1})[0], 403)
        app = self.call("GET", "/api/v1/apps/tok", viewer)[1]["app"]
        self.assertEqual((app["instances"], app["release"], app["deployment"]), (1, 1, None), app)
        self.assertEqual(self.call("GET", "/api/v1/tokens", viewer)[0], 403)

        # The deployer scales; the deployment's event names its token.
        since = self.call("GET", "/api/v1/events?limit=1", viewer)[1]["events"][-1]["id"]
        status, doc = self.call("POST", "/api/v1/apps/tok/scale", deployer, {"instances": 2})
        self.assertEqual(status, 200, doc)
        events = self.call("GET", "/api/v1/events?since=%d&type=deployment_started" % since, viewer)[1]["events"]
        self.assertEqual(len(events), 1, events)
        self.assertEqual(events[0]["actor"], "token:ci")
        self.assertEqual(events[0]["deployment"]["kind"], "scale")
        self.assertEqual(self.call("GET", "/api/v1/apps/tok", viewer)[1]["app"]["instances"], 2)

        self.check_git(viewer, deployer)

        # Listing: JSON without secrets or hashes, and the table.
        r = self.cli(["tokens", "list", "--json"], self.boot)
        listed = json.loads(r.stdout)["tokens"]
        self.assertEqual(sorted(t["name"] for t in listed), ["ci", "watcher"])
        for t in listed:
            self.assertEqual(set(t), {"name", "role", "created", "createdBy"}, t)
        r = self.cli(["tokens", "list"], self.boot)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["NAME", "ROLE", "CREATED", "CREATED-BY"])
        rows = {line.split()[0]: line.split()[1] for line in lines[1:]}
        self.assertEqual(rows, {"ci": "deployer", "watcher": "viewer"})

        # Revocation: the deleted token is refused at once, even for reads.
        r = self.cli(["tokens", "rm", "watcher"], self.boot)
        self.assertIn("deleted", r.stdout)
        status, doc = self.call("GET", "/api/v1/apps", viewer)
        self.assertEqual(status, 401, doc)
        self.assertEqual(doc["message"], "unknown or revoked token")
        r = self.cli(["tokens", "rm", "watcher"], self.boot, check=False)
        self.assertNotEqual(r.returncode, 0)
        types = [e["type"] for e in self.call("GET", "/api/v1/events?type=token_deleted", self.boot)[1]["events"]]
        self.assertEqual(types, ["token_deleted"])


if __name__ == "__main__":
    stelelib.main()
