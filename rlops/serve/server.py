"""HTTP in front of rlops.serve.app.Service: the standard library's ThreadingHTTPServer, HTTP/1.1 keep-alive, one
thread per connection. Chosen over starlette/uvicorn to keep `pip install rlops` light (no ASGI stack for a proxy
whose work is a JSON round trip); the request path does no blocking I/O besides the backend call itself.

| route                        | what                                                                            |
|------------------------------|---------------------------------------------------------------------------------|
| `POST /v1/chat/completions`  | OpenAI-compatible, `stream: true` as server-sent events; tool calls passed through |
| `POST /v1/feedback`          | a feedback event (rlops.serve.feedback), `Idempotency-Key` header              |
| `GET /v1/models`             | the versions the manifest serves now                                           |
| `GET /v1/rlops/status`       | what is served, reloads, queued, written and dropped records                   |

Response headers of a chat completion: `X-Rlops-Interaction-Id` (give it to /v1/feedback), `X-Rlops-Version`
and `X-Rlops-Stage`. Request headers: `X-Rlops-User` (the routing key when the body has no `user`),
`X-Rlops-Conversation-Id`.
"""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from rlops.errors import RlopsError
from rlops.serve import backends, chat_format
from rlops.serve.app import Service
from rlops.serve.config import ServeSettings
from rlops.serve.feedback import IDEMPOTENCY_HEADER, Refused
from rlops.serve.routing import USER_HEADER

INTERACTION_HEADER = "X-Rlops-Interaction-Id"
MAX_BODY = 16 * 1024 * 1024


def _error(message: str, problems: list[tuple[str, str]] = (), kind: str = "invalid_request_error") -> dict:
    """An OpenAI-style error body; `problems` lists every (field, what is wrong and the fix)."""
    return {"error": {"message": message, "type": kind, "param": problems[0][0] if problems else None,
                      "problems": [{"field": f, "message": m} for f, m in problems]}}


def _problem_message(problems: list[tuple[str, str]]) -> str:
    return "; ".join(f"{f}: {m}" if f else m for f, m in problems)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "Server"
    disable_nagle_algorithm = True  # headers and body go in separate writes: no 40 ms delayed-ACK stall

    def log_message(self, format: str, *args: Any) -> None:  # the records are the log; keep stderr for problems
        pass

    # -- plumbing --------------------------------------------------------------------------------------------

    def _send_json(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _read_json(self) -> tuple[bool, Any]:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit() or int(length) > MAX_BODY:
            self.close_connection = True  # the body was not read: this connection cannot carry another request
            self._send_json(411 if length is None else 413, _error(
                f"send a JSON body with a Content-Length of at most {MAX_BODY} bytes", [("", "no or bad length")]))
            return False, None
        raw = self.rfile.read(int(length))
        try:
            return True, json.loads(raw)
        except ValueError as e:
            self._send_json(400, _error(f"the body is not JSON: {e}", [("", f"not JSON: {e}")]))
            return False, None

    # -- routes ----------------------------------------------------------------------------------------------

    def do_GET(self) -> None:
        service = self.server.service
        if self.path == "/v1/models":
            data = [{"id": v, "object": "model", "owned_by": service.cfg.policy, "stage": s}
                    for s, v in service.manifest.stages().items()]
            self._send_json(200, {"object": "list", "data": data})
        elif self.path in ("/v1/rlops/status", "/healthz"):
            self._send_json(200, service.status())
        else:
            self._send_json(404, _error(f"no route GET {self.path}", [("", "use /v1/models or /v1/rlops/status")]))

    def do_POST(self) -> None:
        if self.path.rstrip("/") in ("/v1/chat/completions", "/chat/completions"):
            self._chat()
        elif self.path.rstrip("/") == "/v1/feedback":
            self._feedback()
        else:
            self._send_json(404, _error(f"no route POST {self.path}",
                                        [("", "use /v1/chat/completions or /v1/feedback")]))

    def _chat(self) -> None:
        ok, body = self._read_json()
        if not ok:
            return
        problems = chat_format.request_problems(body) + chat_format.user_problems(self.headers.get(USER_HEADER))
        if problems:
            self._send_json(400, _error(_problem_message(problems), problems))
            return
        service = self.server.service
        try:
            answer = service.chat(body, self.headers.get(USER_HEADER), self.headers.get("X-Rlops-Conversation-Id"),
                                  self.headers.get("Authorization"))
            headers = {INTERACTION_HEADER: answer.interaction_id, "X-Rlops-Version": answer.route.version,
                       "X-Rlops-Stage": answer.route.stage}
            if answer.body is not None:
                self._send_json(200, answer.body, headers)
                return
            assert answer.chunks is not None
            first = next(answer.chunks, None)  # a backend error before the first chunk is still a plain error
        except backends.BackendError as e:
            self._send_json(e.status, e.body)
            return
        except RlopsError as e:  # e.g. a version's checkpoint went missing: say which and the fix
            self._send_json(500, _error(e.message + (f" ({e.hint})" if e.hint else ""), [("", e.message)],
                                        "server_error"))
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        try:
            if first is not None:
                self._event(json.dumps(first))
            for piece in answer.chunks:
                self._event(json.dumps(piece))
        except backends.BackendError as e:  # the stream has started: say so in it, as OpenAI does
            self._event(json.dumps(e.body))
        self._event("[DONE]")
        self.wfile.write(b"0\r\n\r\n")

    def _event(self, data: str) -> None:
        payload = f"data: {data}\n\n".encode()
        self.wfile.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
        self.wfile.flush()

    def _feedback(self) -> None:
        ok, body = self._read_json()
        if not ok:
            return
        service = self.server.service
        try:
            answer, record = service.feedback.accept(body, self.headers.get(IDEMPOTENCY_HEADER))
        except Refused as e:
            self._send_json(e.status, _error(_problem_message(e.problems), e.problems))
            return
        if record is None:
            self._send_json(200, answer, {"Idempotent-Replayed": "true"})
            return
        if not service.records.put("feedback", record):
            service.feedback.forget(answer)  # not written: a retry with the same key must be able to write it
            self._send_json(503, _error("the log queue is full; retry with the same Idempotency-Key",
                                        [("", "server overloaded")], "overloaded"), {"Retry-After": "1"})
            return
        self._send_json(200, answer)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return  # the client left mid-answer (a closed stream): nothing to report
        super().handle_error(request, client_address)

    def __init__(self, address: tuple[str, int], service: Service):
        super().__init__(address, Handler)
        self.service = service

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/v1"


def start(cfg: ServeSettings, root: Path, host: str = "127.0.0.1", port: int = 0, backend: Any = None) -> Server:
    """A running server in a background thread (tests, benchmarks); `server.url` is its /v1 base URL."""
    server = Server((host, port), Service(cfg, root, backend))
    threading.Thread(target=server.serve_forever, daemon=True, name="rlops-serve-http").start()
    return server


def stop(server: Server) -> None:
    server.shutdown()
    server.server_close()
    server.service.close()


def serve_forever(cfg: ServeSettings, root: Path, host: str, port: int) -> None:
    """`rlops serve`: serve until interrupted; SIGHUP reloads the manifest."""
    import signal

    server = Server((host, port), Service(cfg, root))
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, lambda *_: threading.Thread(target=server.service.reload, daemon=True).start())
    print(f"rlops serve: {cfg.policy} on {server.url} ({cfg.backend}); serving {server.service.manifest.stages()}; "
          f"logging to {root / cfg.logs}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        server.service.close()
