"""The map client's site: the built bundle (``functions/web/static``, committed; ``make web`` rebuilds it)
and ``/config.json``, which tells the client where the APIs are and how to log in.

Hashed asset names (``/assets/main-<hash>.js``) never change content: cached for a year, immutable.
``index.html`` names the current ones: revalidated on every load (``no-cache``, with an ``ETag``), so a
new bundle is picked up at once. The files are read once, at the first request (under 1 MB). Text is gzipped
for browsers that accept it, each file at its own first such request (level 6: the base map's 756 kB of borders
travel as 236 kB after 55 ms once; level 9 saved 3 % more for 400 ms).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import mimetypes
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import flask

from shared.responses import error_response
from shared.settings import Settings

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".json": "application/json",
         ".html": "text/html; charset=utf-8", ".txt": "text/plain; charset=utf-8", ".png": "image/png",
         ".svg": "image/svg+xml"}  # fmt: skip


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str
    cache: str
    compressible: bool  # text worth gzipping


COMPRESSIBLE = ("text/", "application/json", "image/svg+xml")
COMPRESS_FROM_BYTES = 1024
COMPRESS_LEVEL = 6


def client_config(settings: Settings) -> dict[str, Any]:
    """What the client needs to know: the API roots (absolute, or paths on this host) and the OIDC login."""
    oidc = None
    if settings.oidc_issuer:
        oidc = {
            "issuer": settings.oidc_issuer,
            "clientId": settings.web_oidc_client_id or settings.oidc_audience or "refsys-web",
            "scope": settings.web_oidc_scope,
        }
    return {"odata": settings.web_odata_url or "/odata/v1", "stac": settings.web_stac_url or "/stac", "oidc": oidc}


class Site:
    def __init__(self, root: Path, settings: Settings) -> None:
        self.root = root
        self.settings = settings
        self._compressed: dict[str, bytes] = {}

    @cached_property
    def files(self) -> dict[str, StaticFile]:
        found: dict[str, StaticFile] = {}
        for path in sorted(p for p in self.root.rglob("*") if p.is_file()):
            name = "/" + path.relative_to(self.root).as_posix()
            body = path.read_bytes()
            content_type = TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            cache = IMMUTABLE if name.startswith("/assets/") else REVALIDATE
            compressible = content_type.startswith(COMPRESSIBLE) and len(body) >= COMPRESS_FROM_BYTES
            etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
            found[name] = StaticFile(body, content_type, etag, cache, compressible)
        if "/index.html" not in found:
            raise FileNotFoundError(f"no built client in {self.root}: run `make web`")
        config = json.dumps(client_config(self.settings)).encode()
        etag = f'"{hashlib.sha256(config).hexdigest()[:32]}"'
        found["/config.json"] = StaticFile(config, TYPES[".json"], etag, REVALIDATE, compressible=False)
        return found

    def _gzipped(self, path: str, found: StaticFile) -> bytes:
        # Two threads may both compress a file the first time: the same bytes, one kept.
        if (body := self._compressed.get(path)) is None:
            body = self._compressed[path] = gzip.compress(found.body, compresslevel=COMPRESS_LEVEL, mtime=0)
        return body

    def handle(self, request: flask.Request) -> flask.Response:
        if request.method not in ("GET", "HEAD"):
            response = error_response(405, "MethodNotAllowed", f"{request.method}: this site is read-only (GET)")
            response.headers["Allow"] = "GET, HEAD"
            return response
        path = "/index.html" if request.path in ("/", "") else request.path
        found = self.files.get(path)
        if found is None:
            return error_response(404, "NotFound", f"no file {request.path!r}; the client is at /")
        body, etag = found.body, found.etag
        headers = {"Cache-Control": found.cache, "X-Content-Type-Options": "nosniff"}
        if found.compressible:
            headers["Vary"] = "Accept-Encoding"
            if "gzip" in request.headers.get("Accept-Encoding", ""):
                # Other bytes, another tag: a cache must not answer one encoding with the other.
                body, etag, headers["Content-Encoding"] = self._gzipped(path, found), f'{etag[:-1]}-gzip"', "gzip"
        headers["ETag"] = etag
        if etag in {tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")}:
            return flask.Response(status=304, headers=headers)
        return flask.Response(body, status=200, headers=headers, content_type=found.content_type)
