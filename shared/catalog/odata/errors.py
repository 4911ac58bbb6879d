"""OData errors: each carries its HTTP status and answers ``{"error": {"code", "message"}}``."""

from __future__ import annotations


class ODataError(Exception):
    status = 400
    code = "BadRequest"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadFilter(ODataError):
    code = "InvalidFilter"


class BadOption(ODataError):
    code = "InvalidQueryOption"


class NotFound(ODataError):
    status = 404
    code = "NotFound"


class Gone(ODataError):
    status = 410
    code = "ProductOffline"


class Unauthorized(ODataError):
    status = 401
    code = "Unauthorized"


class MethodNotAllowed(ODataError):
    status = 405
    code = "MethodNotAllowed"
