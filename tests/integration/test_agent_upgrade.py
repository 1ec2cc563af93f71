"""Operations: upgrading the `stele` binary on an agent host. The agent runs
from an installed copy of the binary; its tasks' executors were started by
that copy. The copy is replaced by a different build (a new file renamed over
the old path, as package managers do) and the agent restarted: it re-attaches
to the executors the previous version started — same tasks, same pids, no
relaunch — and still controls them (a scale-down stops one).

Run: STELE_BIN=build/stele python3 tests/integration/test_agent_upgrade.py -v
Task ports: 32680-32699.
"""

import os
import shutil
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import stelelib  # noqa: E402
from stelelib import STELE, SteleTestCase, pid_alive, sample_app, task_answers, wait_until  # noqa: E402

APP = "/web"


def install(src, dest, marker):
    """Writes a copy of src with `marker` appended (a different file that
    still runs: the ELF loader ignores trailing bytes) and renames it over
    dest, leaving running processes their old inode."""
    tmp = dest + ".new"
    shutil.copyfile(src, tmp)
    with open(tmp, "ab") as f:
        f.write(marker.encode())
    os.chmod(tmp, 0o755)
    os.rename(tmp, dest)


class AgentUpgradeTest(SteleTestCase):

    def test_01_new_binary_reattaches_to_old_executors(self):
        server = self.h.server()
        api = server.api
        binary = self.h.path("bin", "stele")
        os.chmod(os.path.dirname(binary), 0o755)
        install(STELE, binary, "\0stele-test-build-1")
        agent = self.h.agent(server, "agentA", "hostA", "32680-32699", binary=binary)
        wait_until(lambda: [n for n in api.get("/api/v1/nodes")["nodes"] if n["state"] == "active"], 15, "agent active")
        api.post("/v2/apps", sample_app(APP, 2))
        before = wait_until(lambda: len(api.healthy_tasks(APP)) == 2 and api.healthy_tasks(APP), 40, "2 healthy tasks")
        old_inode = os.stat(binary).st_ino

        agent.proc.stop()
        install(STELE, binary, "\0stele-test-build-2")
        self.assertNotEqual(os.stat(binary).st_ino, old_inode, "a new file is installed")
        for t in before:
            self.assertTrue(pid_alive(t["pid"]), "task %s runs on while its agent is down" % t["id"])
        agent.start()

        def reattached():
            nodes = [n for n in api.get("/api/v1/nodes")["nodes"] if n["state"] == "active"]
            healthy = api.healthy_tasks(APP)
            return nodes and len(healthy) == 2 and healthy
        after = wait_until(reattached, 30, "the upgraded agent to re-attach")
        time.sleep(2)  # nothing relaunched meanwhile
        self.assertEqual({t["id"]: t["pid"] for t in api.live_tasks(APP)}, {t["id"]: t["pid"] for t in before})
        for t in after:
            self.assertIn("v1", task_answers(t) or "")
        self.assertIn("re-attached to 2 executors", agent.proc.output().split("--- started")[-1])

        # The new agent controls the old executors: a scale-down stops one.
        api.post("/api/v1/apps/web/scale", {"instances": 1})
        wait_until(lambda: len(api.live_tasks(APP)) == 1, 30, "one task left after scaling down")
        gone = [t for t in before if t["id"] not in {x["id"] for x in api.live_tasks(APP)}]
        self.assertEqual(len(gone), 1)
        wait_until(lambda: not pid_alive(gone[0]["pid"]), 15, "the scaled-down task's process to end")


if __name__ == "__main__":
    stelelib.main()
