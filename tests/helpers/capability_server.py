#!/usr/bin/env python3
"""capability_server.py - a tiny real HTTP scorer for tests/test_capability.c.

Listens on 127.0.0.1 (port 0 = any free port), prints "PORT <n>" on stdout once
ready, and answers POSTs by path:
  /ok        200 {"mqar": 0.75, "copy": 0.25}  (checks the body is a genome JSON)
  /flaky     500 on the first request, then like /ok
  /garbage   200 with a body that is not JSON
  /slow      sleeps 5 s before answering (for client timeouts)
  /missing   404
  /auth      200 like /ok if "Authorization: Bearer s3cret" was sent, else 401
  /big       200 with a 2 MiB body
With --tls CERT KEY it serves HTTPS with that certificate (the TLS tests use
a throwaway self-signed one). Stops when stdin closes.
"""
import json
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATE = {"flaky": 0, "requests": 0}
OK_BODY = json.dumps({"mqar": 0.75, "copy": 0.25}).encode()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):  # keep test output clean
        pass

    def reply(self, code, body):
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_POST(self):
        STATE["requests"] += 1
        n = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(n) if n > 0 else b""
        try:
            genome = json.loads(raw)
            good = isinstance(genome, dict) and "layers" in genome
        except ValueError:
            good = False
        path = self.path
        if path == "/flaky":
            STATE["flaky"] += 1
            if STATE["flaky"] == 1:
                return self.reply(500, b'{"error":"try again"}')
            path = "/ok"
        if path == "/ok":
            return self.reply(200 if good else 400, OK_BODY if good else b'{"error":"bad genome"}')
        if path == "/garbage":
            return self.reply(200, b"<html>this is not json")
        if path == "/slow":
            time.sleep(5)
            return self.reply(200, OK_BODY)
        if path == "/auth":
            if self.headers.get("Authorization") == "Bearer s3cret":
                return self.reply(200, OK_BODY)
            return self.reply(401, b'{"error":"unauthorised"}')
        if path == "/big":
            return self.reply(200, b"[" + b"1," * (1024 * 1024) + b"1]")
        return self.reply(404, b'{"error":"not found"}')


def main():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    if len(sys.argv) == 4 and sys.argv[1] == "--tls":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[2], sys.argv[3])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("PORT %d" % srv.server_address[1], flush=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        sys.stdin.read()  # the test closes our stdin to stop us
    finally:
        srv.shutdown()


if __name__ == "__main__":
    main()
