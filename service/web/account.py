"""Signing in and out, and the signed-in home page listing the user's projects."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from service.web import access, csrf, forms, sessions, signin
from service.web.render import page, safe_return_to, see_other


def _login_form(
    request: Request, current: sessions.Current, return_to: str, *, email: str = "",
    error: str | None = None, status: int = 200, headers: dict[str, str] | None = None,
) -> Response:
    response = page(request, "login.html", {"csrf": current.data.csrf, "next": return_to, "email": email,
                                            "error": error}, status=status, headers=headers)
    sessions.set_cookie(response, request, current)
    return response


async def _form_session(request: Request) -> sessions.Current:
    """The session that carries the sign-in form's CSRF token: the visitor's own, else a new anonymous one."""
    current = await sessions.load(request)
    return current if current is not None else await sessions.start(request, sessions.anonymous())


async def login_form(request: Request) -> Response:
    return_to = safe_return_to(request.query_params.get("next"))
    current = await sessions.load(request)
    if current is not None and current.data.user_id is not None:
        return see_other(return_to)
    return _login_form(request, current or await sessions.start(request, sessions.anonymous()), return_to)


async def login(request: Request) -> Response:
    current = await sessions.load(request)
    form = await request.form()
    return_to = safe_return_to(forms.text(form, "next"))
    email, password = forms.text(form, "email"), forms.text(form, "password")
    try:
        csrf.check(current, forms.text(form, csrf.FORM_FIELD))
    except csrf.CsrfRefused:
        # checks no credentials; offers a fresh form instead of a dead end
        fresh = await _form_session(request)
        return _login_form(request, fresh, return_to, email=email,
                           error="The sign-in form had expired. Please sign in again.", status=403)
    assert current is not None
    try:
        user = await signin.authenticate(request, email, password)
    except signin.Throttled as exc:
        return _login_form(request, current, return_to, email=email, error=exc.message, status=exc.status,
                           headers=dict(exc.headers))
    if user is None:
        return _login_form(request, current, return_to, email=email,
                           error="Incorrect email or password.", status=401)
    # a new id at sign-in, so an id planted or seen before it is worth nothing after it
    await sessions.end(request, current.sid)
    fresh = await sessions.start(request, sessions.signed_in(user.id, user.email, user.name))
    response = see_other(return_to)
    sessions.set_cookie(response, request, fresh)
    return response


async def logout(request: Request) -> Response:
    current = await sessions.load(request)
    if current is not None:
        await csrf.checked_form(request, current)
        await sessions.end(request, current.sid)
    response = see_other("/login")
    sessions.clear_cookie(response, request)
    return response


_PROJECTS_SQL = """
SELECT p.slug, p.name, m.role::text AS role
  FROM memberships m JOIN projects p ON p.id = m.project_id
 WHERE m.user_id = $1
 ORDER BY p.name, p.slug"""


async def home(request: Request) -> Response:
    current = await access.signed_in(request)
    projects = await request.app.state.pool.fetch(_PROJECTS_SQL, current.data.user_id)
    return page(request, "home.html", {"session": current.data, "projects": projects})
