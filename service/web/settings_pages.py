"""The project settings pages: General for every member, API (tokens) for the project's admins.

Forms follow Post/Redirect/Get. A new token's plaintext goes from the create request to the next page
view through a one-time value in Redis that the view takes and deletes, so a reload never shows it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from service import tokens
from service.errors import NotFound
from service.web import access, csrf, forms, sessions
from service.web.render import created_label, last_used_label, page, see_other, utc_today


class Notice(msgspec.Struct, omit_defaults=True):
    """What the next view of the API page shows once: a token just created, or one just revoked."""

    project_id: int
    created_name: str | None = None
    token: str | None = None
    revoked_name: str | None = None


_notice_encoder = msgspec.json.Encoder()
_notice_decoder = msgspec.json.Decoder(Notice)


@dataclass(frozen=True, slots=True)
class Row:
    id: int
    name: str
    masked: str
    created: str
    created_at: str
    last_used: str
    last_used_at: str | None
    revoked: bool


def _rows(listing: list[tokens.TokenListing]) -> list[Row]:
    today = utc_today()
    return [
        Row(t.id, t.name, t.masked, created_label(t.created_at), t.created_at.isoformat(),
            last_used_label(t.last_used_at, today), t.last_used_at.isoformat() if t.last_used_at else None,
            t.revoked_at is not None)
        for t in listing
    ]


def _api_path(member: access.Membership) -> str:
    return f"/projects/{member.slug}/settings/api"


def _api_return_to(request: Request) -> str:
    return f"/projects/{request.path_params['slug']}/settings/api"


async def _api_page(request: Request, current: sessions.Current, member: access.Membership, *,
                    notice: Notice | None = None, problems: dict[str, str] | None = None,
                    name: str = "", mode: str = "live", status: int = 200) -> Response:
    rows = _rows(await tokens.list_for_project(request.app.state.pool, member.project_id))
    context: dict[str, Any] = {
        "session": current.data, "member": member, "tab": "api", "rows": rows, "notice": notice,
        "problems": problems or {}, "name": name, "mode": mode,
    }
    return page(request, "settings_api.html", context, status=status)


async def general(request: Request) -> Response:
    current = await access.signed_in(request)
    member = await access.membership(request, current)
    context = {"session": current.data, "member": member, "tab": "general"}
    return page(request, "settings_general.html", context)


async def api(request: Request) -> Response:
    current = await access.signed_in(request)
    member = await access.project_admin(request, current)
    held = await sessions.take_once(request, current)
    notice = None
    if held is not None:
        try:
            notice = _notice_decoder.decode(held)
        except msgspec.DecodeError:
            notice = None
    if notice is not None and notice.project_id != member.project_id:
        notice = None
    return await _api_page(request, current, member, notice=notice)


async def create(request: Request) -> Response:
    current = await access.signed_in(request, _api_return_to(request))
    form = await csrf.checked_form(request, current)
    member = await access.project_admin(request, current)
    name, mode = forms.text(form, "name").strip(), forms.text(form, "mode") or "live"
    problems = forms.token_problems(name, mode)
    if problems:
        return await _api_page(request, current, member, problems=problems, name=name, mode=mode, status=422)
    _, plaintext = await tokens.create(request.app.state.pool, member.project_id, name, mode,
                                       created_by=current.data.user_id)
    notice = Notice(member.project_id, created_name=name, token=plaintext)
    await sessions.hold_once(request, current, _notice_encoder.encode(notice))
    return see_other(_api_path(member))


async def _token_of(request: Request, member: access.Membership) -> tokens.TokenListing:
    token_id = forms.token_id(request.path_params["token_id"])
    listing = await tokens.find(request.app.state.pool, member.project_id, token_id) if token_id else None
    if listing is None:
        raise NotFound("No token with this id in the project.")
    return listing


async def revoke_confirm(request: Request) -> Response:
    current = await access.signed_in(request)
    member = await access.project_admin(request, current)
    listing = await _token_of(request, member)
    if listing.revoked_at is not None:
        return see_other(_api_path(member))
    return page(request, "revoke_confirm.html",
                {"session": current.data, "member": member, "tab": "api", "token": listing})


async def revoke(request: Request) -> Response:
    current = await access.signed_in(request, _api_return_to(request))
    await csrf.checked_form(request, current)
    member = await access.project_admin(request, current)
    listing = await _token_of(request, member)
    await request.app.state.gate.revoke(member.project_id, listing.id)
    notice = Notice(member.project_id, revoked_name=listing.name)
    await sessions.hold_once(request, current, _notice_encoder.encode(notice))
    return see_other(_api_path(member))
