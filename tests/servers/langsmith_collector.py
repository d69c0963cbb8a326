"""A LangSmith collector on loopback: records what the real `langsmith` client posts.

Point ``LANGSMITH_ENDPOINT`` at ``server.url``. It answers ``GET /info`` (no
``zstd_compression_enabled`` flag, so the client sends plain multipart; set
``LANGSMITH_DISABLE_RUN_COMPRESSION=true`` as well), takes ``POST /runs/multipart``
(langsmith 0.15's default), ``POST /runs/batch``, ``POST /runs`` and ``PATCH /runs/<id>``,
and answers 200 ``{}`` to anything else. Every request is kept raw (headers and body) in
``server.requests``; `runs` merges the posts and patches per run id.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
from typing import Any

from tests.servers.base import Handler, LoopbackServer


class LangSmithHandler(Handler):
    """Records the SDK's requests; see the module docstring."""

    def do_GET(self) -> None:
        self._record(b"")
        if self.path.split("?")[0].rstrip("/") == "/info":
            self.send_json(200, {"version": "0.0-collector", "instance_flags": {}})
        else:
            self.send_json(200, {})

    def do_POST(self) -> None:
        self._record(self._body())
        self.send_json(200, {})

    def do_PATCH(self) -> None:
        self._record(self._body())
        self.send_json(200, {})

    def _body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def _record(self, raw: bytes) -> None:
        self.server.requests.append(
            {
                "method": self.command,
                "path": self.path,
                "headers": dict(self.headers),
                "raw": raw,
            }
        )


def serve() -> LoopbackServer:
    """A collector on 127.0.0.1:<free port> (not started; use it as a context manager)."""
    return LoopbackServer(LangSmithHandler)


def multipart_parts(request: dict[str, Any]) -> list[tuple[str, Any]]:
    """(part name, decoded JSON) for each part of a ``/runs/multipart`` request."""
    content_type = request["headers"].get("Content-Type") or request["headers"]["content-type"]
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + request["raw"]
    )
    parts = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        parts.append((str(name), json.loads(payload) if payload else None))
    return parts


def runs(requests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every run the client sent, its posts and patches merged, by run id."""
    merged: dict[str, dict[str, Any]] = {}
    for request in requests:
        path = request["path"].split("?")[0]
        if request["method"] == "POST" and path == "/runs/multipart":
            for name, value in multipart_parts(request):
                _op, run_id, *field = name.split(".")
                run = merged.setdefault(run_id, {"id": run_id})
                if field:
                    run[field[0]] = value
                elif isinstance(value, dict):
                    run.update(value)
        elif request["method"] == "POST" and path == "/runs/batch":
            body = json.loads(request["raw"])
            for op in ("post", "patch"):
                for run in body.get(op) or []:
                    merged.setdefault(str(run["id"]), {}).update(run)
        elif path.startswith("/runs") and request["raw"]:
            run = json.loads(request["raw"])
            run_id = str(run.get("id") or path.rsplit("/", 1)[-1])
            merged.setdefault(run_id, {"id": run_id}).update(run)
    return merged
