"""A webhook receiver for the tests: verifies every delivery with the Standard Webhooks
reference library (PyPI `standardwebhooks`), independent of the server's own signing code.

    python3 receiver.py PORT SECRET OUT

Each verified message is appended to OUT as one JSON line {"id", "type", "data"}; a delivery
that fails verification is answered 400 and recorded as {"error": ...}. Prints "ready" once
listening.
"""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook

port, secret, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
verifier = Webhook(secret)
lock = threading.Lock()


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            payload = verifier.verify(body, headers)
            record = {"id": headers["webhook-id"], "type": payload["type"], "data": payload["data"]}
            status = 204
        except Exception as err:  # noqa: BLE001 - any failure is the finding
            record = {"error": f"{type(err).__name__}: {err}"}
            status = 400
        with lock, open(out, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", port), Receiver)
print("ready", flush=True)
server.serve_forever()
