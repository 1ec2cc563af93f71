"""The sample app: serves the page the build rendered (public/index.html),
the release it runs as, and $GREETING when set; /health answers "ok".

Listens on $HOST:$PORT0 (the agent's address, which its health checks and
the routers connect to; 127.0.0.1 when HOST is unset). Reads its working
directory only: a release's slug is read-only at run time.
"""
import html
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.dont_write_bytecode = True

HERE = os.path.dirname(os.path.abspath(__file__))
PAGE_PATH = os.path.join(HERE, "public", "index.html")


def load_page(path=PAGE_PATH):
    with open(path, encoding="utf-8") as f:
        return f.read()


def render_index(page, env):
    """The body of GET /: the built page, then the release and the greeting."""
    extra = "<p class=\"release\">release %s</p>\n" % html.escape(env.get("STELE_RELEASE", "?"))
    greeting = env.get("GREETING", "")
    if greeting:
        extra += "<p class=\"greeting\">%s</p>\n" % html.escape(greeting)
    marker = "</body>"
    i = page.rfind(marker)
    return page[:i] + extra + page[i:] if i >= 0 else page + extra


def respond(path, page, env):
    """(status, content type, body) for a GET of `path`."""
    if path == "/health":
        return 200, "text/plain; charset=utf-8", "ok\n"
    if path in ("/", "/index.html"):
        return 200, "text/html; charset=utf-8", render_index(page, env)
    return 404, "text/plain; charset=utf-8", "not found\n"


def make_handler(page, env):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            status, ctype, body = respond(self.path.split("?", 1)[0], page, env)
            data = body.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, fmt, *args):
            sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    return Handler


def main():
    port = int(os.environ.get("PORT0", "8080"))
    host = os.environ.get("HOST") or "127.0.0.1"
    server = ThreadingHTTPServer((host, port), make_handler(load_page(), dict(os.environ)))
    print("hello: release %s listening on %s:%d" % (os.environ.get("STELE_RELEASE", "?"), host, port), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
