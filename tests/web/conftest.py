"""Web clients with their own client address (the sign-in throttle counts per address) and sign-in helpers."""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import pytest

from service import admin
from tests.conftest import Project

_addresses = (f"10.{a}.{b}.{c}" for a, b, c in itertools.product(range(1, 255), range(256), range(1, 255)))
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

WebClient = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def web(app: Any) -> AsyncIterator[WebClient]:
    """Makes browser-like clients: a cookie jar, no redirects followed, one client address each."""
    opened: list[httpx.AsyncClient] = []

    async def make(*, base_url: str = "http://testserver", address: str | None = None) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address or next(_addresses), 50000))
        c = httpx.AsyncClient(transport=transport, base_url=base_url, follow_redirects=False)
        opened.append(c)
        return c

    yield make
    for c in opened:
        await c.aclose()


def csrf_from(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


async def login_form(c: httpx.AsyncClient, next_: str | None = None) -> str:
    r = await c.get("/login", params={"next": next_} if next_ else None)
    assert r.status_code == 200
    return csrf_from(r.text)


async def sign_in(c: httpx.AsyncClient, email: str, password: str, next_: str = "/") -> httpx.Response:
    token = await login_form(c, next_)
    return await c.post(
        "/login", data={"email": email, "password": password, "csrf_token": token, "next": next_}
    )


async def signed_in(web: WebClient, email: str, password: str) -> httpx.AsyncClient:
    c = await web()
    r = await sign_in(c, email, password)
    assert r.status_code == 303, r.text
    return c


async def add_member(pool: asyncpg.Pool, slug: str, role: str) -> tuple[str, str]:
    """A new user with `role` in project `slug`: (email, password)."""
    email = f"{role}-{uuid.uuid4().hex[:10]}@example.com"
    password = f"pw-{uuid.uuid4().hex}"
    async with pool.acquire() as conn:
        await admin.create_user(conn, email, role.replace("_", " ").title(), password)
        await admin.add_member(conn, slug, email, role)
    return email, password


async def page_csrf(c: httpx.AsyncClient, project: Project) -> str:
    r = await c.get(f"/projects/{project.slug}/settings/api")
    assert r.status_code == 200
    return csrf_from(r.text)
