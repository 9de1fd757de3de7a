"""The pages' only calls into service.tokens, kept together so a change of its signatures is one edit."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from service import tokens
from service.web.access import Membership
from service.web.sessions import Current


@dataclass(frozen=True, slots=True)
class NewToken:
    id: int
    plaintext: str  # shown once, kept nowhere
    masked: str


async def create(request: Request, member: Membership, current: Current, name: str, mode: str) -> NewToken:
    token_id, plaintext = await tokens.create(request.app.state.pool, member.project_id, name, mode,
                                              created_by=current.data.user_id)
    return NewToken(token_id, plaintext, tokens.mask(mode, plaintext[-4:]))


async def list_for(request: Request, member: Membership) -> list[tokens.TokenListing]:
    return await tokens.list_for_project(request.app.state.pool, member.project_id)


async def revoke(request: Request, member: Membership, token_id: int) -> bool:
    """Revoke a token of the project (again is harmless); False when the project has no such token."""
    return await tokens.revoke(request.app.state.pool, member.project_id, token_id)
