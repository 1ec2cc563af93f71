"""State store: `stele store migrate` copies a SQLite state.db into a real
etcd started here (Debian's etcd-server), and a server started with
`--store etcd://...` serves the same apps.

Run: STELE_BIN=build/stele python3 tests/integration/test_store_migrate.py -v
No task ports: no agent runs.
"""

import contextlib
import json
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import stelelib  # noqa: E402
from stelelib import STELE, SteleTestCase, sample_app  # noqa: E402

APPS = ["/web", "/shop/api"]


@contextlib.contextmanager
def store_env(url):
    """Servers the harness starts while inside get --store through its
    environment variable (STELE_STORE; the harness's argv has no such flag)."""
    old = os.environ.get("STELE_STORE")
    os.environ["STELE_STORE"] = url
    try:
        yield
    finally:
        if old is None:
            del os.environ["STELE_STORE"]
        else:
            os.environ["STELE_STORE"] = old


class StoreMigrateTest(SteleTestCase):

    def migrate(self, *args, check=True):
        return self.h.run([STELE, "store", "migrate"] + list(args), check=check)

    def test_sqlite_state_served_from_etcd_after_migrate(self):
        etcd_url = self.start_etcd()
        server = self.h.server("sqlite-server")
        for app_id in APPS:
            server.api.post("/v2/apps", sample_app(app_id, 1))
        server.proc.stop()
        db = os.path.join(server.data_dir, "state.db")

        r = self.migrate("--from", "sqlite:" + db, "--to", etcd_url, "--json")
        report = json.loads(r.stdout)
        self.assertEqual(report["documents"]["apps"], len(APPS), report)
        self.assertGreater(report["events"], 0, report)

        # A second copy would mix two states: refused unless --force.
        again = self.migrate("--from", "sqlite:" + db, "--to", etcd_url, check=False)
        self.assertNotEqual(again.returncode, 0)
        self.assertIn("not empty", again.stderr)
        self.assertIn("--force", again.stderr)
        forced = self.migrate("--from", "sqlite:" + db, "--to", etcd_url, "--force")
        self.assertIn("apps", forced.stdout)

        bad = self.migrate("--from", "sqlite:" + db, "--to", "etcd://127.0.0.1", check=False)
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("bad etcd endpoint '127.0.0.1'", bad.stderr)

        missing = self.migrate("--from", "sqlite:" + db + ".typo", "--to", etcd_url, "--force", check=False)
        self.assertNotEqual(missing.returncode, 0)
        self.assertIn("no SQLite state store at", missing.stderr)

        with store_env(etcd_url):
            on_etcd = self.h.server("etcd-server")
        ids = sorted(a["id"] for a in on_etcd.api.get("/v2/apps")["apps"])
        self.assertEqual(ids, sorted(APPS))
        self.assertFalse(os.path.exists(os.path.join(on_etcd.data_dir, "state.db")),
                         "the etcd-backed server made a SQLite state.db too")


if __name__ == "__main__":
    stelelib.main()
