"""A real HTTP server on loopback that stands in for the OpenAI chat completions API.

It records every request (path, headers, body, when it came) and answers with a canned completion
that echoes the last user message (or a fixed text, or what a function of the request returns), so
tests can check both what was sent and what came back. It also stands in for a provider's rate
limits: ``failures`` answers the first requests with given statuses (and headers, such as
``Retry-After``), and ``admit=N`` answers 429 with ``Retry-After: busy_after`` to any request
beyond N at once, as an API over its concurrency quota does. It listens on 127.0.0.1; pods of the test
cluster use the host's network and reach it there.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def send_json(handler: BaseHTTPRequestHandler, status: int, payload: dict, headers: dict | None = None) -> None:
    """Answer a request with ``payload`` as JSON (the loopback stand-in servers share it)."""
    data = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("content-type", "application/json")
    handler.send_header("content-length", str(len(data)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(data)


class FakeOpenAI:
    def __init__(
        self,
        delay: float = 0.0,
        reply: Any = "echo",
        port: int = 0,
        counts: Any = None,
        admit: int | None = None,
        busy_after: str = "0.2",
    ) -> None:
        self.requests: list[dict] = []
        self.counts = counts  # a function (request body, reply text) -> (prompt, completion) tokens
        self.usage: list[dict] = []  # the usage of every answer sent, by model: what a provider bills
        self.delay = delay
        self.reply = reply
        # status codes (or (status, headers); 0 drops the connection) to answer with before succeeding
        self.failures: list[int | tuple[int, dict[str, str]]] = []
        self.admit, self.busy_after = admit, busy_after
        self.active = self.most_active = self.refused = 0
        lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):  # http.server's naming
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with lock:
                    server.requests.append(
                        {
                            "path": self.path,
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                            "body": body,
                            "at": time.monotonic(),
                        }
                    )
                    failure = server.failures.pop(0) if server.failures else None
                    busy = server.admit is not None and server.active >= server.admit
                    if busy:
                        server.refused += 1
                    elif failure is None:
                        server.active += 1
                        server.most_active = max(server.most_active, server.active)
                if failure == 0:  # 0: the connection drops without an answer
                    self.close_connection = True
                    return
                if failure is not None:
                    status, headers = failure if isinstance(failure, tuple) else (failure, {})
                    send_json(self, status, {"error": {"message": f"status {status}", "type": "test"}}, headers)
                    return
                if busy:
                    send_json(
                        self,
                        429,
                        {"error": {"message": "rate limited", "type": "requests"}},
                        {"retry-after": server.busy_after},
                    )
                    return
                try:
                    self._answer(body)
                finally:
                    with lock:
                        server.active -= 1

            def _answer(self, body):
                if server.delay:
                    time.sleep(server.delay)
                last = body.get("messages", [{}])[-1].get("content", "")
                if callable(server.reply):
                    text = server.reply(body)
                else:
                    text = f"{server.reply}: {last}" if server.reply == "echo" else server.reply
                prompt, completion = server.counts(body, text) if server.counts else (7, 3)
                usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
                server.usage.append({"model": body.get("model", "test-model"), **usage})
                self._send(
                    200,
                    {
                        "id": "chatcmpl-test",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body.get("model", "test-model"),
                        "choices": [
                            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
                        ],
                        "usage": usage,
                    },
                )

            def _send(self, status, payload):
                send_json(self, status, payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


if __name__ == "__main__":
    # The test cluster's model gateway (tests/cluster/cluster.py): one echoing server on a fixed
    # loopback port for the whole cluster, which every Workflow pod's OpenAI client is pointed at.
    import sys

    FakeOpenAI(port=int(sys.argv[1])).httpd.serve_forever()
