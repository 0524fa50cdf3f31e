"""Test stand-in for the app behind nginx: answers every request on a unix
socket with a JSON echo of what it received (method, path, headers)."""

import json
import os
import socketserver
import sys
from http.server import BaseHTTPRequestHandler

SOCKET = sys.argv[1]


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self):
        body = json.dumps({"method": self.command, "path": self.path,
                           "headers": {k.lower(): v for k, v in self.headers.items()}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_HEAD = _answer

    def address_string(self):
        return "unix"

    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


if os.path.exists(SOCKET):
    os.unlink(SOCKET)
os.makedirs(os.path.dirname(SOCKET), exist_ok=True)
server = Server(SOCKET, Echo)
os.chmod(SOCKET, 0o666)
server.serve_forever()
