"""Anthropic error envelopes: `{"type":"error","error":{"type","message"},"request_id"}`.

Every refusal of the reference server is an `APIError`; the app turns it into a JSON response
with the status, the envelope and the retry hints (`retry-after`, `x-should-retry`) real
responses carry.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

STATUS_TO_TYPE: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}

TYPE_TO_STATUS: dict[str, int] = {kind: status for status, kind in STATUS_TO_TYPE.items()}

# The default messages of the OpenAPI description, used where no more specific text applies.
DEFAULT_MESSAGES: dict[str, str] = {
    "invalid_request_error": "Invalid request",
    "authentication_error": "Authentication error",
    "permission_error": "Permission denied",
    "not_found_error": "Not found",
    "request_too_large": "Request exceeds the maximum allowed number of bytes.",
    "rate_limit_error": "Rate limited",
    "api_error": "Internal server error",
    "overloaded_error": "Overloaded",
}

# Statuses a client may retry (the SDKs retry 429, 5xx and 529); `retry-after` is sent with these.
RETRYABLE = frozenset({429, 500, 529})
RETRY_AFTER_SECONDS = "1"


class APIError(Exception):
    """A refusal: HTTP status, Anthropic error type and message, and any extra response headers."""

    def __init__(self, status: int, message: str, *, error_type: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type or STATUS_TO_TYPE.get(status, "invalid_request_error")
        self.message = message

    @classmethod
    def of_type(cls, error_type: str, message: str | None = None) -> APIError:
        """The error of a given Anthropic type with its usual status and default message."""
        return cls(TYPE_TO_STATUS[error_type], message or DEFAULT_MESSAGES[error_type], error_type=error_type)


def invalid_request(message: str) -> APIError:
    return APIError(400, message)


def error_body(error_type: str, message: str, request_id: str | None) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}


def retry_headers(status: int) -> dict[str, str]:
    """`x-should-retry` on every error, and `retry-after` where a retry makes sense."""
    headers = {"x-should-retry": "true" if status in RETRYABLE else "false"}
    if status in (429, 529):
        headers["retry-after"] = RETRY_AFTER_SECONDS
    return headers


def error_response(error: APIError, request_id: str) -> JSONResponse:
    headers = {"request-id": request_id, **retry_headers(error.status)}
    return JSONResponse(error_body(error.error_type, error.message, request_id), error.status, headers=headers)
