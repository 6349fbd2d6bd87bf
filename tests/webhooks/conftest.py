import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from webhooks.models import Subscription
from webhooks.signing import secret_generate


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A real HTTP endpoint on localhost that records what it gets and answers as told."""

    url: str
    received: list[Received] = field(default_factory=list)
    # (status, headers, delay in seconds) per request, in order; 200 when empty.
    answers: deque = field(default_factory=deque)

    def answer(self, status: int, headers: dict[str, str] | None = None, delay: float = 0):
        self.answers.append((status, headers or {}, delay))


@pytest.fixture
def receiver():
    state: dict = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            box: Receiver = state["receiver"]
            box.received.append(
                Received(
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
            )
            status, headers, delay = box.answers.popleft() if box.answers else (200, {}, 0)
            if delay:
                time.sleep(delay)
            payload = b'{"ok": true}'
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the sender timed out and left

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state["receiver"] = Receiver(url=f"http://127.0.0.1:{server.server_port}/hooks")
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state["receiver"]
    server.shutdown()
    server.server_close()


@pytest.fixture
def subscribe(db):
    def make(url: str, events=("lead.enriched",), **kwargs) -> Subscription:
        return Subscription.objects.create(
            url=url, events=list(events), secret=secret_generate(), **kwargs
        )

    return make
