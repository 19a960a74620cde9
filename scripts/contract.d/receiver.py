"""An asynchronous webhook executor for ./scripts/contract: answers every POST with 202 (the
execution reports later through POST /public-api/executions/{id}/complete) and prints its port."""

import http.server
import sys


class Accept(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Accept)
print(server.server_address[1], flush=True)
sys.stdout.close()
server.serve_forever()
