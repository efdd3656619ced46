"""A tiny OpenAI-compatible server for tests and benchmarks: real HTTP on localhost, answers made up from the request.

It stands in for the endpoint a team already runs (a hosted API or their own vLLM), which cannot exist here. The
answer names the model it was asked for, so a test can tell which version answered: "[MODEL] echo: LAST USER TEXT".
A request with tools whose last user message contains "tool" gets a tool call to the first tool instead; the model
"overloaded" gets a 503.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def answer_for(body: dict) -> dict:
    """The assistant message the fake gives to `body`."""
    last = next((m.get("content") or "" for m in reversed(body["messages"]) if m.get("role") == "user"), "")
    if body.get("tools") and "tool" in last:
        name = body["tools"][0]["function"]["name"]
        return {"role": "assistant", "content": None,
                "tool_calls": [{"id": "call_1", "type": "function",
                                "function": {"name": name, "arguments": json.dumps({"order_id": "A-17"})}}]}
    return {"role": "assistant", "content": f"[{body.get('model')}] echo: {last}"}


class FakeOpenAI:
    def __init__(self, delay_s: float = 0.0):
        self.delay_s = delay_s
        self.models: list[str] = []  # the model of every request, in arrival order
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go in separate writes: no 40 ms delayed-ACK stall

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake.lock:
                    fake.models.append(body.get("model"))
                if fake.delay_s:
                    time.sleep(fake.delay_s)
                if body.get("model") == "overloaded":  # an endpoint that refuses: its error must reach the caller
                    data = json.dumps({"error": {"message": "model overloaded", "type": "server_error"}}).encode()
                    self.send_response(503)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                message = answer_for(body)
                usage = {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}
                if not body.get("stream"):
                    data = json.dumps({"id": "chatcmpl-fake", "object": "chat.completion", "created": 0,
                                       "model": body.get("model"), "usage": usage,
                                       "choices": [{"index": 0, "message": message,
                                                    "finish_reason": "tool_calls" if message.get("tool_calls") else "stop"}]}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()

                def event(obj):
                    payload = f"data: {obj if isinstance(obj, str) else json.dumps(obj)}\n\n".encode()
                    self.wfile.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")

                def chunk(delta, finish=None):
                    return {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0,
                            "model": body.get("model"), "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

                event(chunk({"role": "assistant", "content": ""}))
                if message.get("tool_calls"):
                    call = message["tool_calls"][0]
                    args = call["function"]["arguments"]
                    event(chunk({"tool_calls": [{"index": 0, "id": call["id"], "type": "function",
                                                 "function": {"name": call["function"]["name"], "arguments": args[:5]}}]}))
                    event(chunk({"tool_calls": [{"index": 0, "function": {"arguments": args[5:]}}]}))
                    event(chunk({}, "tool_calls"))
                else:
                    words = message["content"].split(" ")
                    for i, word in enumerate(words):
                        event(chunk({"content": word + (" " if i < len(words) - 1 else "")}))
                    event(chunk({}, "stop"))
                event({**chunk({}), "choices": [], "usage": usage})
                event("[DONE]")
                self.wfile.write(b"0\r\n\r\n")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
