"""HTML responses: templates, the dates the token table shows, and error pages for page requests."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from service.errors import ApiError
from service.web.access import SignInRequired

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")

# Every page: no caching (a page may hold a token that is shown once), no framing (the revoke
# confirmation must not be clickable through another site), scripts and styles from here only.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def page(request: Request, template: str, context: dict[str, Any], status: int = 200,
         headers: dict[str, str] | None = None) -> Response:
    return templates.TemplateResponse(request, template, context, status_code=status,
                                      headers={**PAGE_HEADERS, **(headers or {})})


def see_other(url: str) -> Response:
    """Post/Redirect/Get: a form's answer is a redirect to a page, so a reload never posts again."""
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


# Dates are shown in UTC, the zone the service keeps them in.
def created_label(moment: datetime) -> str:
    day = moment.astimezone(UTC)
    return f"{day:%b} {day.day}, {day.year}"


def last_used_label(moment: datetime | None, today: date) -> str:
    if moment is None:
        return "Never used"
    day = moment.astimezone(UTC).date()
    if day == today:
        return "Today"
    if day == today - timedelta(days=1):
        return "Yesterday"
    return created_label(moment)


def utc_today() -> date:
    return datetime.now(UTC).date()


_JSON_PATHS = re.compile(r"^/api/|^/projects/[^/]+/settings/api/tokens(/|$)")


def is_page(request: Request) -> bool:
    """Whether the request is for an HTML page (not the API, not the pages' JSON endpoints)."""
    return _JSON_PATHS.search(request.url.path) is None


def safe_return_to(raw: str | None) -> str:
    """A same-site path to go back to after signing in; anything else (another host, a scheme) is `/`."""
    if not raw or not raw.startswith("/") or raw.startswith(("//", "/\\")) or any(c < " " for c in raw):
        return "/"
    return raw


def login_url(return_to: str) -> str:
    return "/login" if return_to == "/" else f"/login?next={quote(return_to, safe='/')}"


_TITLES = {
    400: "Bad request",
    403: "Not allowed",
    404: "Page not found",
    405: "Not allowed",
    413: "Too large",
    429: "Too many requests",
    503: "Temporarily unavailable",
}


def error_page(request: Request, exc: ApiError) -> Response | None:
    """The HTML answer to an error on a page request, or None when the request wants JSON."""
    if not is_page(request):
        return None
    if isinstance(exc, SignInRequired):
        return see_other(login_url(safe_return_to(exc.return_to)))
    title = _TITLES.get(exc.status, "Something went wrong")
    return page(request, "error.html", {"status": exc.status, "title": title, "message": exc.message},
                status=exc.status, headers=dict(exc.headers))
