"""A Hugging Face Hub-compatible file server on 127.0.0.1 for download tests.

It answers ``HEAD``/``GET /{repo_id}/resolve/{revision}/{filename}`` with the headers that
``huggingface_hub.hf_hub_download`` reads (X-Repo-Commit, ETag, Content-Length), so the real
download code path runs against it — nothing is mocked.
"""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class HubServer:
    def __init__(self) -> None:
        self.files: dict[tuple[str, str, str], bytes] = {}
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def _lookup(self) -> bytes | None:
                server.requests.append(f"{self.command} {self.path}")
                parts = self.path.split("?")[0].strip("/").split("/")
                if len(parts) < 5 or parts[2] != "resolve":
                    return None
                repo_id, revision, filename = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
                return server.files.get((repo_id, revision, filename))

            def _headers(self, body: bytes) -> None:
                commit = hashlib.sha1(b"commit:" + body).hexdigest()
                self.send_response(200)
                self.send_header("X-Repo-Commit", commit)
                self.send_header("ETag", f'"{hashlib.sha256(body).hexdigest()}"')
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()

            def _missing(self) -> None:
                self.send_response(404)
                self.send_header("X-Error-Code", "EntryNotFound")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_HEAD(self) -> None:  # noqa: N802
                body = self._lookup()
                self._headers(body) if body is not None else self._missing()

            def do_GET(self) -> None:  # noqa: N802
                body = self._lookup()
                if body is None:
                    self._missing()
                    return
                self._headers(body)
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, repo_id: str, filename: str, body: bytes, revision: str = "main") -> None:
        self.files[(repo_id, revision, filename)] = body

    def __enter__(self) -> HubServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
