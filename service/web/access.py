"""Who is asking, and what they may do in the project the URL names."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from service.errors import ApiError, Forbidden, NotFound
from service.web import sessions


class SignInRequired(ApiError):
    status = 401
    code = "sign_in_required"
    message = "Sign in to continue."

    def __init__(self, return_to: str = "/") -> None:
        super().__init__()
        self.return_to = return_to  # where a page sends the visitor back after signing in


async def signed_in(request: Request, return_to: str | None = None) -> sessions.Current:
    current = await sessions.load(request)
    if current is None or current.data.user_id is None:
        raise SignInRequired(return_to or request.url.path)
    return current


@dataclass(frozen=True, slots=True)
class Membership:
    project_id: int
    slug: str
    name: str
    rate_limit: int
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


_MEMBERSHIP_SQL = """
SELECT p.id, p.slug, p.name, p.api_rate_limit, m.role::text AS role
  FROM projects p JOIN memberships m ON m.project_id = p.id
 WHERE p.slug = $1 AND m.user_id = $2"""


async def membership(request: Request, current: sessions.Current) -> Membership:
    """The signed-in user's place in the URL's project; 404 when they are not in it (or it does not exist)."""
    slug: str = request.path_params["slug"]
    row = None
    if len(slug) <= 63 and "\x00" not in slug:
        row = await request.app.state.pool.fetchrow(_MEMBERSHIP_SQL, slug, current.data.user_id)
    if row is None:
        raise NotFound("No such project.")
    return Membership(row["id"], row["slug"], row["name"], row["api_rate_limit"], row["role"])


async def project_admin(request: Request, current: sessions.Current) -> Membership:
    """As `membership`, and 403 unless the user is one of the project's admins."""
    member = await membership(request, current)
    if not member.is_admin:
        raise Forbidden("Only the project's admins can manage API tokens.")
    return member
