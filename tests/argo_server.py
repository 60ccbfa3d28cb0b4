"""A real HTTP(S) server on loopback that stands in for the Argo Server's REST API, with the few
endpoints llmstep uses (create, get, terminate, log) and the bearer-token check. Its "controller"
plays the workflow out the way Argo's controller reports it: Pending, Running, then a final phase
with step nodes whose names and output parameters have Argo's shape. The chain itself is run in
this process (``chain.invoke``), so results are real.
"""

from __future__ import annotations

import json
import secrets
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from openai_server import send_json

from llmstep import serde

TOKEN = "argo-token"
"""The bearer token the stand-in accepts unless told another."""


class FakeArgoServer:
    def __init__(
        self, chain: Any = None, token: str = TOKEN, tls: tuple[str, str] | None = None, step_delay: float = 0.3
    ) -> None:
        self.chain, self.token, self.step_delay = chain, token, step_delay
        self.workflows: dict[tuple[str, str], dict] = {}
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _route(self, method: str) -> None:
                length = int(self.headers.get("content-length", 0) or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                server.requests.append(
                    {"method": method, "path": self.path, "auth": self.headers.get("authorization"), "body": body}
                )
                if self.headers.get("authorization") != f"Bearer {server.token}":
                    return self._send(
                        401,
                        {
                            "code": 16,
                            "message": "token not valid. see https://argo-workflows.readthedocs.io/en/latest/faq/",
                        },
                    )
                parts = self.path.split("?")[0].strip("/").split("/")
                if parts[:3] != ["api", "v1", "workflows"] or len(parts) < 4:
                    return self._send(404, {"code": 5, "message": "Not Found"})
                ns = parts[3]
                if ns == "forbidden":
                    return self._send(
                        403,
                        {
                            "code": 7,
                            "message": f'workflows.argoproj.io is forbidden: User "system:serviceaccount:argo:ci" cannot create resource "workflows" in the namespace "{ns}"',
                        },
                    )
                if method == "POST" and len(parts) == 4:
                    return self._send(200, server._create(ns, body["workflow"]))
                wf = server.workflows.get((ns, parts[4])) if len(parts) > 4 else None
                if wf is None:
                    return self._send(
                        404,
                        {
                            "code": 5,
                            "message": f'workflows.argoproj.io "{parts[4] if len(parts) > 4 else ""}" not found',
                        },
                    )
                if method == "GET" and len(parts) == 5:
                    with server.lock:
                        return self._send(200, wf)
                if method == "PUT" and parts[5:] == ["terminate"]:
                    wf["spec"]["shutdown"] = "Terminate"
                    return self._send(200, wf)
                if method == "GET" and parts[5:] == ["log"]:
                    lines = [
                        json.dumps({"result": {"podName": pod, "content": line}})
                        for pod, text in wf.get("_logs", {}).items()
                        for line in text.splitlines()
                    ]
                    data = ("\n".join(lines) + "\n").encode()
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return None
                return self._send(405, {"code": 12, "message": "method not allowed"})

            def do_GET(self):
                self._route("GET")

            def do_POST(self):
                self._route("POST")

            def do_PUT(self):
                self._route("PUT")

            def _send(self, status, payload):
                send_json(self, status, {k: v for k, v in payload.items() if not k.startswith("_")})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        scheme = "http"
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeArgoServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # ---------------------------------------------------------------- the "controller"

    def _create(self, ns: str, wf: dict) -> dict:
        meta = wf.setdefault("metadata", {})
        meta["name"] = meta.get("name") or meta.pop("generateName", "wf-") + secrets.token_hex(3)
        meta["namespace"] = ns
        meta["uid"] = secrets.token_hex(8)
        self.workflows[(ns, meta["name"])] = wf
        threading.Thread(target=self._play, args=(wf,), daemon=True).start()
        return wf

    def _play(self, wf: dict) -> None:
        name = wf["metadata"]["name"]
        params = {p["name"]: p.get("value") for p in wf["spec"]["arguments"]["parameters"]}
        task = wf["metadata"]["annotations"]["llmstep.dev/output-task"]
        self._set(wf, {"phase": "Pending"})
        time.sleep(self.step_delay)
        self._set(wf, {"phase": "Running"})
        time.sleep(self.step_delay)
        if wf["spec"].get("shutdown"):
            return self._set(wf, {"phase": "Failed", "message": "Stopped with strategy 'Terminate'"})
        nodes: dict[str, dict] = {}
        logs: dict[str, str] = {}
        if "inputs" in params:  # a batch: one nested DAG per item, as withParam expands it
            for index, item in enumerate(json.loads(params["inputs"])):
                parent = f"{name}.item({index}:{json.dumps(item, separators=(',', ':'))})"
                nodes[f"{name}-{10 + index}"] = {
                    "id": f"{name}-{10 + index}",
                    "name": parent,
                    "displayName": parent[len(name) + 1 :],
                    "type": "DAG",
                    "phase": "Running",
                }
                self._step(
                    nodes, logs, name, parent, task, 1000 + index, item if isinstance(item, str) else json.dumps(item)
                )
        else:
            self._step(nodes, logs, name, name, task, 1, params["input"])
        failed = [n for n in nodes.values() if n["phase"] == "Failed"]
        wf["_logs"] = logs
        self._set(
            wf,
            {
                "phase": "Failed" if failed else "Succeeded",
                "nodes": nodes,
                **({"message": "child failed"} if failed else {}),
            },
        )

    def _step(self, nodes: dict, logs: dict, name: str, parent: str, task: str, number: int, input_json: str) -> None:
        node_id = f"{name}-{number}"
        node = {
            "id": node_id,
            "name": f"{parent}.{task}",
            "displayName": task,
            "templateName": task.lower(),
            "type": "Pod",
        }
        try:
            value = self.chain.invoke(serde.loads_value(input_json, where="test input"))
            node.update(
                phase="Succeeded", outputs={"parameters": [{"name": "output", "value": serde.dumps_value(value)}]}
            )
            logs[f"{name}-{task.lower()}-{number}"] = f"llmstep: step {task} done\n"
        except Exception as exc:  # reported the way a failed step is
            node.update(phase="Failed", message=f"{type(exc).__name__}: {exc} (exit code 1)")
        nodes[node_id] = node

    def _set(self, wf: dict, status: dict) -> None:
        with self.lock:
            wf["status"] = status
