"""The API page's operations as JSON, under the same session, role and CSRF rules as the page.

Errors keep the service's JSON shape; a signed-out caller gets 401 rather than a redirect.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta
from starlette.requests import Request
from starlette.responses import Response

from service import tokens
from service.errors import NotFound, ValidationFailed
from service.payload import build, json_object
from service.web import access, csrf, forms


class TokenCreate(msgspec.Struct):
    name: Annotated[str, Meta(min_length=1, max_length=forms.NAME_MAX)]
    mode: Literal["live", "test"] = "live"


class TokenOut(msgspec.Struct):
    id: int
    name: str
    masked_token: str
    created_at: str
    last_used_at: str | None
    revoked_at: str | None


class TokenList(msgspec.Struct):
    data: list[TokenOut]


class TokenCreated(msgspec.Struct):
    id: int
    name: str
    mode: str
    token: str  # the plaintext: in this response only
    masked_token: str


class Created(msgspec.Struct):
    data: TokenCreated


_encoder = msgspec.json.Encoder()


def _json(body: msgspec.Struct, status: int = 200) -> Response:
    return Response(_encoder.encode(body), status_code=status, media_type="application/json",
                    headers={"Cache-Control": "no-store"})


def _ts(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def _out(t: tokens.TokenListing) -> TokenOut:
    return TokenOut(t.id, t.name, t.masked, _ts(t.created_at) or "", _ts(t.last_used_at), _ts(t.revoked_at))


async def list_tokens(request: Request) -> Response:
    current = await access.signed_in(request)
    member = await access.project_admin(request, current)
    return _json(TokenList([_out(t) for t in await tokens.list_for_project(request.app.state.pool, member.project_id)]))


async def create_token(request: Request) -> Response:
    current = await access.signed_in(request)
    csrf.check_header(request, current)
    member = await access.project_admin(request, current)
    body = build(TokenCreate, await json_object(request), non_blank=frozenset({"name"}))
    name = body.name.strip()
    if problems := forms.token_problems(name, body.mode):
        raise ValidationFailed(fields=problems)
    token_id, plaintext = await tokens.create(request.app.state.pool, member.project_id, name, body.mode,
                                              created_by=current.data.user_id)
    masked = tokens.mask(body.mode, plaintext[-4:])
    return _json(Created(TokenCreated(token_id, name, body.mode, plaintext, masked)), status=201)


async def revoke_token(request: Request) -> Response:
    current = await access.signed_in(request)
    csrf.check_header(request, current)
    member = await access.project_admin(request, current)
    token_id = forms.token_id(request.path_params["token_id"])
    if token_id is None or not await request.app.state.gate.revoke(member.project_id, token_id):
        raise NotFound("No token with this id in the project.")
    return Response(status_code=204, headers={"Cache-Control": "no-store"})
