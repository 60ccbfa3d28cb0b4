"""A local registry endpoint that answers every request "not found" (run by cluster.py).

    python tests/cluster/registry.py PORT

containerd resolves every registry a test image can name to this endpoint, so an image pull
fails for real (ErrImagePull, ImagePullBackOff) without leaving the machine.
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _missing(self):
        body = json.dumps(
            {"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not known to registry"}]}
        ).encode()
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_HEAD = do_POST = _missing


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
