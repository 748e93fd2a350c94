"""A local OpenAI-compatible chat-completions server for tests (127.0.0.1, a free port, a thread)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def completion(body: dict[str, Any], message: dict[str, Any], *, finish_reason: str = "stop") -> dict[str, Any]:
    """A chat.completion response carrying ``message``, for the model named in the request ``body``."""
    return {"id": "chatcmpl-stub", "object": "chat.completion", "created": 0, "model": body.get("model"),
            "choices": [{"index": 0, "finish_reason": finish_reason, "message": message}],
            "usage": {"prompt_tokens": 11 + len(body.get("messages") or []), "completion_tokens": 2,
                      "total_tokens": 13 + len(body.get("messages") or [])}}


@contextmanager
def openai_stub(reply: Callable[[dict[str, Any]], str | dict[str, Any]]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Serve ``POST .../chat/completions``: ``reply(body)`` gives the assistant's text, or a whole response
    document (tool calls, say). Yields the base URL (``.../v1``) and the requests seen (path and body)."""
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append({"path": self.path, "body": body})
            out = reply(body)
            doc = completion(body, {"role": "assistant", "content": out}) if isinstance(out, str) else out
            data = json.dumps(doc).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", seen
    finally:
        server.shutdown()
        server.server_close()
