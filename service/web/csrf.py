"""CSRF protection: a synchronizer token kept in the session, sent back in forms and in a header."""

from __future__ import annotations

import hmac

from starlette.datastructures import FormData
from starlette.requests import Request

from service.errors import Forbidden
from service.web.sessions import Current

FORM_FIELD = "csrf_token"
HEADER = "X-CSRF-Token"


class CsrfRefused(Forbidden):
    code = "csrf_failed"
    message = "This request did not carry this session's CSRF token. Reload the page and try again."


def check(current: Current | None, sent: str | None) -> None:
    if current is None or not sent or not hmac.compare_digest(sent.encode(), current.data.csrf.encode()):
        raise CsrfRefused()


async def checked_form(request: Request, current: Current | None) -> FormData:
    """The posted form, once its CSRF token matched the session's."""
    form = await request.form()
    sent = form.get(FORM_FIELD)
    check(current, sent if isinstance(sent, str) else None)
    return form


def check_header(request: Request, current: Current | None) -> None:
    check(current, request.headers.get(HEADER))
