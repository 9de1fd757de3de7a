"""One error hierarchy and one JSON shape for every error the service returns."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec
from starlette.responses import Response


class ApiError(Exception):
    status = 500
    code = "internal_error"
    message = "Something went wrong on our side."
    default_headers: Mapping[str, str] = {}

    def __init__(
        self,
        message: str | None = None,
        *,
        fields: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.message = message or type(self).message
        self.fields = dict(fields or {})
        self.headers = {**self.default_headers, **(headers or {})}
        super().__init__(self.message)


class BadRequest(ApiError):
    status = 400
    code = "bad_request"
    message = "The request could not be read."


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"
    message = "A valid API token is required in the Authorization header."
    default_headers = {"WWW-Authenticate": 'Bearer realm="PathPro", error="invalid_token"'}


class Forbidden(ApiError):
    status = 403
    code = "forbidden"
    message = "You do not have access to this."


class NotFound(ApiError):
    status = 404
    code = "not_found"
    message = "Not found."


class MethodNotAllowed(ApiError):
    status = 405
    code = "method_not_allowed"
    message = "This method is not allowed here."


class PayloadTooLarge(ApiError):
    status = 413
    code = "payload_too_large"
    message = "The request body is too large."


class UnsupportedMediaType(ApiError):
    status = 415
    code = "unsupported_media_type"
    message = "Send the body as JSON with Content-Type: application/json."


class ValidationFailed(ApiError):
    status = 422
    code = "validation_failed"
    message = "Some fields are invalid."


class RateLimited(ApiError):
    status = 429
    code = "rate_limited"
    message = "Too many requests. Retry after the time in the Retry-After header."


class ServiceUnavailable(ApiError):
    status = 503
    code = "service_unavailable"
    message = "The service is temporarily unavailable. Retry shortly."


class ErrorBody(msgspec.Struct, omit_defaults=True):
    code: str
    message: str
    fields: dict[str, str] | None = None


class ErrorEnvelope(msgspec.Struct):
    error: ErrorBody


_encoder = msgspec.json.Encoder()


def error_body(code: str, message: str, fields: Mapping[str, str] | None = None) -> bytes:
    return _encoder.encode(ErrorEnvelope(ErrorBody(code, message, dict(fields) if fields else None)))


def error_response(exc: ApiError) -> Response:
    return Response(
        error_body(exc.code, exc.message, exc.fields),
        status_code=exc.status,
        headers=exc.headers,
        media_type="application/json",
    )


def http_error(status: int, headers: Mapping[str, str] | None = None) -> ApiError:
    """The ApiError for a status Starlette raised itself (unknown route, wrong method)."""
    cls = _BY_STATUS.get(status)
    if cls is not None:
        return cls(headers=headers)
    err = ApiError(headers=headers)
    err.status = status
    err.code = "http_error"
    return err


_BY_STATUS = {cls.status: cls for cls in ApiError.__subclasses__()}
