"""A stand-in OpenAI-compatible chat endpoint that answers with a function of the prompt: for the tests of the
guard that holds a language model to the words (a real model cannot be told to misbehave on cue)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextmanager
def chat_server(answer: Callable[[str, str], str], *, status: int = 200) -> Iterator[str]:
    """Serves `POST /v1/chat/completions`, answering `answer(system, user)`; yields the base URL."""
    seen: list[dict[str, object]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append(body)
            system, user = (m["content"] for m in body["messages"])
            payload = (
                {"choices": [{"message": {"role": "assistant", "content": answer(system, user)}}]}
                if status == 200
                else {"error": {"message": "overloaded"}}
            )
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
