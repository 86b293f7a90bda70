#!/usr/bin/python3
"""fake_vendor: a loopback HTTP server that answers as a vendor documents.

Started by the clients' unit tests (tests/unit/clients/vendor_fixture.c)
with /usr/bin/python3. It listens on 127.0.0.1 on a free port and prints
"PORT <n>" as its first line, then serves until killed.

What it answers:
  POST /v1/listen   Deepgram's pre-recorded API: 401 with Deepgram's body
                    unless "Authorization: Token <--key>"; 400 with
                    Deepgram's body unless the body starts like audio (WAV,
                    MP3, MP4/M4A, WebM); else 200 with --listen-response.
  anything else     404, unless a script step is queued.

Other vendors' fakes (fake_stripe.py) import this module and subclass
Handler, overriding vendor() with their own behaviour.

Control (never recorded):
  POST /_script     JSON list of steps answered in turn by the next
                    requests, before the vendor behaviour above. A step:
                    {"status": 429, "headers": {...}, "body": "text" or
                    "body_file": "name in --data", "hang_ms": n (read the
                    request, then send nothing for n ms and close),
                    "partial": true (send half the body, then close),
                    "process": true (with hang_ms: let the vendor act on
                    the request first, as a server whose answer is lost),
                    "path": "/v1/x" (only a request for this path takes the
                    step; others pass it by)}
  GET  /_requests   JSON list of what was received: method, path, query
                    (list of [name, value]), headers (lower-case names),
                    form (a form-encoded body as a list of [name, value],
                    else null), body_len, body_sha256, chunked.
  POST /_reset      forgets the script and the requests.
"""
import argparse
import hashlib
import json
import os
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

HANG_MAX_MS = 30000
AUDIO_MAGIC = (b"RIFF", b"ID3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2", b"\x1a\x45\xdf\xa3")


def looks_like_audio(body):
    return body.startswith(AUDIO_MAGIC) or body[4:8] == b"ftyp"


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.script = []
        self.requests = []


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-vendor"

    def log_message(self, fmt, *args):
        pass

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks), True
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return (self.rfile.read(length) if length else b""), False

    def send(self, status, body=b"", headers=None, content_type="application/json"):
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if body or status not in (204, 304):
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def data_file(self, name):
        with open(os.path.join(self.server.state.args.data, name), "rb") as f:
            return f.read()

    def control(self, path, body):
        state = self.server.state
        with state.lock:
            if path == "/_script":
                state.script.extend(json.loads(body))
            elif path == "/_reset":
                state.script.clear()
                state.requests.clear()
            elif path == "/_requests":
                self.send(200, json.dumps(state.requests).encode())
                return
        self.send(204)

    def handle_any(self):
        url = urlsplit(self.path)
        body, chunked = self.read_body()
        if url.path.startswith("/_"):
            self.control(url.path, body)
            return
        state = self.server.state
        with state.lock:
            state.requests.append({
                "method": self.command,
                "path": url.path,
                "query": parse_qsl(url.query, keep_blank_values=True),
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "form": parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
                if self.headers.get("Content-Type") == "application/x-www-form-urlencoded"
                else None,
                "body_len": len(body),
                "body_sha256": hashlib.sha256(body).hexdigest(),
                "chunked": chunked,
                "monotonic_s": time.monotonic(),
            })
            step = next((s for s in state.script if s.get("path", url.path) == url.path), None)
            if step is not None:
                state.script.remove(step)
        if step is not None:
            self.answer_step(step, url, body)
        else:
            self.send(*self.vendor(url, body))

    def vendor(self, url, body):
        """The vendor's answer to a request: (status, body, headers)."""
        if url.path == "/v1/listen" and self.command == "POST":
            return self.deepgram_listen(body)
        return 404, b'{"err_code":"NOT_FOUND"}', None

    def answer_step(self, step, url, body):
        if "hang_ms" in step:
            if step.get("process"):
                self.vendor(url, body)
            deadline = time.monotonic() + min(step["hang_ms"], HANG_MAX_MS) / 1000
            while time.monotonic() < deadline:
                time.sleep(0.05)
            self.close_connection = True
            return
        body = step.get("body", "").encode()
        if "body_file" in step:
            body = self.data_file(step["body_file"])
        status = step.get("status", 200)
        if step.get("partial"):
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.send(status, body, step.get("headers"))

    def deepgram_listen(self, body):
        args = self.server.state.args
        request_id = {"dg-request-id": str(uuid.uuid4())}
        if self.headers.get("Authorization") != "Token " + args.key:
            return 401, self.data_file("error-401.json"), request_id
        if not looks_like_audio(body):
            return 400, self.data_file("error-400.json"), request_id
        return 200, self.data_file(args.listen_response), request_id

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any


def serve(handler, state):
    """Serves handler on a free loopback port, printing it first."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.state = state
    print("PORT", server.server_address[1], flush=True)
    server.serve_forever()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True, help="folder of the answers (tests/data/<vendor>)")
    parser.add_argument("--key", default="test-key", help="the API key that is accepted")
    parser.add_argument("--listen-response", default="listen-nova3-preamble.json")
    args = parser.parse_args()
    serve(Handler, State(args))


if __name__ == "__main__":
    sys.exit(main())
