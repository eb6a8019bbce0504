"""An engine process for lifecycle tests: `python idle_engine.py MODEL PORT` answers `/v1/models`
on 127.0.0.1:PORT and holds every generation request open (so the caller is mid-use when it is
interrupted). A real process with a real port, started in milliseconds (no model to load)."""

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL, PORT = sys.argv[1], int(sys.argv[2])


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model"}]}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        time.sleep(600)

    def log_message(self, *args):
        print(*args, flush=True)


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
