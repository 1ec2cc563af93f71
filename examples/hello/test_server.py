"""Tests of the sample app, run by the pipeline's test step in a copy of
the built slug (so public/index.html exists): `python3 -m unittest -v test_server`."""
import os
import threading
import unittest
import urllib.error
import urllib.request
from http.server import ThreadingHTTPServer

import server


class BuiltPage(unittest.TestCase):
    def test_build_rendered_the_page(self):
        self.assertTrue(os.path.exists(server.PAGE_PATH), "public/index.html is missing: run `sh build.sh` first")
        page = server.load_page()
        self.assertIn("<h1>", page)
        self.assertNotIn("@", page, "a template placeholder was left unrendered")

    def test_build_info_names_the_source(self):
        with open(os.path.join(server.HERE, "BUILD_INFO")) as f:
            info = f.read()
        self.assertRegex(info, r"source-digest [0-9a-f]{12}\n")


class Responses(unittest.TestCase):
    PAGE = "<html><body><h1>Hi</h1></body></html>"

    def test_index_shows_release_and_greeting(self):
        status, ctype, body = server.respond("/", self.PAGE, {"STELE_RELEASE": "7", "GREETING": "hi <you>"})
        self.assertEqual(status, 200)
        self.assertTrue(ctype.startswith("text/html"))
        self.assertIn("<h1>Hi</h1>", body)
        self.assertIn("release 7", body)
        self.assertIn("hi &lt;you&gt;", body)
        self.assertTrue(body.endswith("</body></html>"))

    def test_no_greeting_line_without_greeting(self):
        _, _, body = server.respond("/", self.PAGE, {"STELE_RELEASE": "1"})
        self.assertNotIn("greeting", body)

    def test_health_and_unknown_paths(self):
        self.assertEqual(server.respond("/health", self.PAGE, {}), (200, "text/plain; charset=utf-8", "ok\n"))
        self.assertEqual(server.respond("/nope", self.PAGE, {})[0], 404)


class OverHttp(unittest.TestCase):
    """The handler behind a real socket (port 0), as the platform runs it."""

    def setUp(self):
        handler = server.make_handler(self.page(), {"STELE_RELEASE": "3"})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.base = "http://127.0.0.1:%d" % self.httpd.server_address[1]

    def tearDown(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    @staticmethod
    def page():
        return "<html><body>page</body></html>"

    def test_get_index_and_health(self):
        with urllib.request.urlopen(self.base + "/", timeout=5) as r:
            self.assertEqual(r.status, 200)
            self.assertIn("release 3", r.read().decode())
        with urllib.request.urlopen(self.base + "/health", timeout=5) as r:
            self.assertEqual(r.read(), b"ok\n")
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(self.base + "/missing", timeout=5)
        self.assertEqual(e.exception.code, 404)


if __name__ == "__main__":
    unittest.main()
