"""Sign-in, sessions and sign-out against the real Redis and PostgreSQL."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time

import httpx
import msgspec
import pytest
from argon2 import PasswordHasher, extract_parameters

from service import passwords
from service.app import create_app
from service.web import sessions, signin
from tests.conftest import Project, free_port, make_project
from tests.web.conftest import WebClient, csrf_from, login_form, sign_in, signed_in


def _session_key(settings, sid: str) -> str:
    return f"{settings.redis_prefix}session:{hashlib.sha256(sid.encode()).hexdigest()}"


def _throttle_keys(settings, email: str, address: str) -> tuple[str, str]:
    account = hashlib.sha256(email.lower().encode()).hexdigest()
    return (
        f"{settings.redis_prefix}signin:account:{account}",
        f"{settings.redis_prefix}signin:address:{address}",
    )


def _set_cookie_of(response) -> str:
    (header,) = [v for k, v in response.headers.multi_items() if k == "set-cookie"]
    return header


async def test_sign_in_rotates_the_session_and_lands_on_next(
    web: WebClient, project: Project, settings, redis_client
) -> None:
    c = await web()
    next_ = f"/projects/{project.slug}/settings/api"
    token = await login_form(c, next_)
    before = c.cookies[sessions.COOKIE]
    assert await redis_client.exists(_session_key(settings, before))

    r = await c.post(
        "/login",
        data={
            "email": project.admin_email,
            "password": project.admin_password,
            "csrf_token": token,
            "next": next_,
        },
    )

    assert r.status_code == 303 and r.headers["location"] == next_
    after = c.cookies[sessions.COOKIE]
    assert after != before
    assert not await redis_client.exists(_session_key(settings, before))
    stored = msgspec.json.decode(await redis_client.get(_session_key(settings, after)))
    assert stored["user_id"] == project.admin_id and stored["csrf"] != token
    assert (await c.get(next_)).status_code == 200


async def test_email_is_matched_without_case(web: WebClient, project: Project) -> None:
    c = await web()
    r = await sign_in(c, project.admin_email.upper(), project.admin_password)
    assert r.status_code == 303


async def test_session_cookie_flags(web: WebClient, project: Project) -> None:
    plain = await web()
    await login_form(plain)
    r = await plain.post(
        "/login",
        data={
            "email": project.admin_email,
            "password": project.admin_password,
            "csrf_token": csrf_from((await plain.get("/login")).text),
        },
    )
    cookie = _set_cookie_of(r).lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    assert "secure" not in cookie

    https = await web(base_url="https://testserver")
    r = await sign_in(https, project.admin_email, project.admin_password)
    cookie = _set_cookie_of(r).lower()
    assert r.status_code == 303
    assert "httponly" in cookie and "samesite=lax" in cookie and "; secure" in cookie


async def test_wrong_email_and_wrong_password_get_the_same_answer(
    web: WebClient, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    verified: list[str] = []
    real_verify = passwords.verify

    def spy(stored: str, password: str) -> bool:
        verified.append(stored)
        return real_verify(stored, password)

    monkeypatch.setattr(passwords, "verify", spy)
    c = await web()
    token = await login_form(c)
    wrong_password = await c.post(
        "/login", data={"email": project.admin_email, "password": "nope", "csrf_token": token}
    )
    wrong_email = await c.post(
        "/login", data={"email": "nobody-" + project.admin_email, "password": "nope", "csrf_token": token}
    )

    assert wrong_password.status_code == wrong_email.status_code == 401
    # the form echoes the email typed; everything else is the same page
    assert wrong_password.text.replace(project.admin_email, "E") == wrong_email.text.replace(
        "nobody-" + project.admin_email, "E"
    )
    assert "Incorrect email or password." in wrong_email.text
    # both verified one argon2id hash of the same cost, so both take the same time
    assert len(verified) == 2
    assert extract_parameters(verified[0]) == extract_parameters(verified[1])
    assert sessions.COOKIE not in c.cookies or (await c.get("/")).status_code == 303


async def test_throttled_per_account_even_with_the_right_password(web: WebClient, project: Project) -> None:
    c = await web()
    token = await login_form(c)
    for _ in range(signin.ACCOUNT_LIMIT):
        r = await c.post(
            "/login", data={"email": project.admin_email, "password": "nope", "csrf_token": token}
        )
        assert r.status_code == 401
    r = await c.post(
        "/login", data={"email": project.admin_email, "password": project.admin_password, "csrf_token": token}
    )
    assert r.status_code == 429 and "Too many sign-in attempts" in r.text
    assert r.headers["retry-after"] == str(signin.WINDOW)

    # from another address too, since the count is the account's
    other = await web()
    r = await sign_in(other, project.admin_email, project.admin_password)
    assert r.status_code == 429
    # an account that does not exist is throttled the same way, so throttling reveals nothing
    ghost = "ghost-" + project.admin_email
    for _ in range(signin.ACCOUNT_LIMIT):
        assert (
            await c.post("/login", data={"email": ghost, "password": "x", "csrf_token": token})
        ).status_code == 401
    assert (
        await c.post("/login", data={"email": ghost, "password": "x", "csrf_token": token})
    ).status_code == 429


async def test_throttled_per_address(web: WebClient, pool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signin, "ADDRESS_LIMIT", 3)
    project = await make_project(pool)
    c = await web(address="10.255.255.1")
    token = await login_form(c)
    for i in range(3):
        r = await c.post(
            "/login", data={"email": f"x{i}-{project.admin_email}", "password": "n", "csrf_token": token}
        )
        assert r.status_code == 401
    r = await c.post(
        "/login", data={"email": project.admin_email, "password": project.admin_password, "csrf_token": token}
    )
    assert r.status_code == 429

    elsewhere = await web()
    assert (await sign_in(elsewhere, project.admin_email, project.admin_password)).status_code == 303


async def test_success_clears_the_account_failures(
    web: WebClient, project: Project, settings, redis_client
) -> None:
    c = await web(address="10.255.255.2")
    token = await login_form(c)
    for _ in range(signin.ACCOUNT_LIMIT - 1):
        await c.post("/login", data={"email": project.admin_email, "password": "nope", "csrf_token": token})
    account_key, address_key = _throttle_keys(settings, project.admin_email, "10.255.255.2")
    assert int(await redis_client.get(account_key)) == signin.ACCOUNT_LIMIT - 1
    assert (await sign_in(c, project.admin_email, project.admin_password)).status_code == 303
    assert not await redis_client.exists(account_key)
    # the success is taken back from the address's count; its failures stay
    assert int(await redis_client.get(address_key)) == signin.ACCOUNT_LIMIT - 1


async def test_password_is_rehashed_when_parameters_change(web: WebClient, project: Project, pool) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(project.admin_password)
    await pool.execute("UPDATE users SET password_hash = $2 WHERE id = $1", project.admin_id, weak)
    assert passwords.needs_rehash(weak)

    c = await web()
    assert (await sign_in(c, project.admin_email, project.admin_password)).status_code == 303

    stored = await pool.fetchval("SELECT password_hash FROM users WHERE id = $1", project.admin_id)
    assert stored != weak and not passwords.needs_rehash(stored)
    assert passwords.verify(stored, project.admin_password)


async def test_sign_in_form_without_its_csrf_token_checks_nothing(
    web: WebClient, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(passwords, "verify", lambda stored, pw: calls.append(stored) or True)
    c = await web()
    await login_form(c)
    for sent in ({}, {"csrf_token": "forged"}):
        r = await c.post(
            "/login", data={"email": project.admin_email, "password": project.admin_password, **sent}
        )
        assert r.status_code == 403 and "expired" in r.text
    # a form from no session at all
    fresh = await web()
    r = await fresh.post(
        "/login", data={"email": project.admin_email, "password": project.admin_password, "csrf_token": "x"}
    )
    assert r.status_code == 403
    assert calls == []
    assert (await c.get(f"/projects/{project.slug}/settings")).status_code == 303


async def test_sign_out_deletes_the_session(web: WebClient, project: Project, settings, redis_client) -> None:
    c = await signed_in(web, project.admin_email, project.admin_password)
    sid = c.cookies[sessions.COOKIE]
    page = await c.get(f"/projects/{project.slug}/settings")
    token = csrf_from(page.text)

    refused = await c.post("/logout", data={"csrf_token": "forged"})
    assert refused.status_code == 403 and "text/html" in refused.headers["content-type"]
    assert await redis_client.exists(_session_key(settings, sid))

    r = await c.post("/logout", data={"csrf_token": token})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert not await redis_client.exists(_session_key(settings, sid))
    assert 'pathpro_session=""' in _set_cookie_of(r) or "max-age=0" in _set_cookie_of(r).lower()

    # the old cookie, replayed, is worth nothing
    replay = await web()
    replay.cookies.set(sessions.COOKIE, sid)
    r = await replay.get(f"/projects/{project.slug}/settings/api")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


async def test_sessions_expire(web: WebClient, project: Project, settings, redis_client) -> None:
    anonymous = await web()
    await login_form(anonymous)
    ttl = await redis_client.ttl(_session_key(settings, anonymous.cookies[sessions.COOKIE]))
    assert 0 < ttl <= sessions.ANONYMOUS_TTL

    c = await signed_in(web, project.admin_email, project.admin_password)
    key = _session_key(settings, c.cookies[sessions.COOKIE])
    assert 0 < await redis_client.ttl(key) <= sessions.IDLE_TTL

    # past the absolute lifetime the session is over, however recently it was used
    stored = msgspec.json.decode(await redis_client.get(key))
    stored["created"] = time.time() - sessions.MAX_AGE - 1
    await redis_client.set(key, msgspec.json.encode(stored), ex=sessions.IDLE_TTL)
    r = await c.get(f"/projects/{project.slug}/settings")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert not await redis_client.exists(key)


async def test_a_garbled_session_is_no_session(
    web: WebClient, project: Project, settings, redis_client
) -> None:
    c = await signed_in(web, project.admin_email, project.admin_password)
    key = _session_key(settings, c.cookies[sessions.COOKIE])
    await redis_client.set(key, b"\x00not json", ex=60)
    r = await c.get(f"/projects/{project.slug}/settings")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


async def test_signed_out_visitors_are_sent_to_sign_in_and_back(web: WebClient, project: Project) -> None:
    c = await web()
    target = f"/projects/{project.slug}/settings/api"
    r = await c.get(target)
    assert r.status_code == 303
    assert r.headers["location"] == f"/login?next={target}"
    page = await c.get(r.headers["location"])
    assert f'name="next" value="{target}"' in page.text
    r = await c.post(
        "/login",
        data={
            "email": project.admin_email,
            "password": project.admin_password,
            "csrf_token": csrf_from(page.text),
            "next": target,
        },
    )
    assert r.status_code == 303 and r.headers["location"] == target


async def test_sign_in_never_redirects_off_site(web: WebClient, project: Project) -> None:
    for next_ in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:x"):
        c = await web()
        r = await sign_in(c, project.admin_email, project.admin_password, next_=next_)
        assert r.status_code == 303 and r.headers["location"] == "/", next_


async def test_session_ids_and_passwords_are_never_logged(
    web: WebClient, project: Project, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    c = await web()
    await sign_in(c, project.admin_email, "wrong-" + project.admin_password)
    await sign_in(c, project.admin_email, project.admin_password)
    sid = c.cookies[sessions.COOKIE]
    page = await c.get(f"/projects/{project.slug}/settings/api")
    text = "\n".join(r.getMessage() + str(r.__dict__) for r in caplog.records)
    assert sid not in text and project.admin_password not in text
    assert sid not in page.text


async def test_redis_unreachable_is_a_503_not_a_crash(settings, project: Project) -> None:
    dead = dataclasses.replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    application = create_app(dead)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, client=("10.255.255.3", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            page = await c.get("/login")
            assert page.status_code == 503 and "text/html" in page.headers["content-type"]
            c.cookies.set(sessions.COOKIE, "a" * 43)
            listed = await c.get(f"/projects/{project.slug}/settings/api/tokens")
            assert listed.status_code == 503 and listed.json()["error"]["code"] == "service_unavailable"


async def test_behind_a_trusted_proxy_each_client_address_has_its_own_sign_in_budget(
    settings, pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(signin, "ADDRESS_LIMIT", 3)
    project = await make_project(pool)
    proxied = create_app(dataclasses.replace(settings, trusted_proxies=("10.254.0.0/24",)))
    async with proxied.router.lifespan_context(proxied):

        def via_proxy(client_address: str) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=proxied, client=("10.254.0.9", 50000))
            return httpx.AsyncClient(transport=transport, base_url="http://testserver",
                                     headers={"X-Forwarded-For": client_address})

        async with via_proxy("192.0.2.10") as sprayer, via_proxy("192.0.2.20") as admin:
            token = await login_form(sprayer)
            for i in range(3):
                r = await sprayer.post("/login", data={"email": f"x{i}-{project.admin_email}", "password": "n",
                                                       "csrf_token": token})
                assert r.status_code == 401
            r = await sprayer.post("/login", data={"email": "y-" + project.admin_email, "password": "n",
                                                   "csrf_token": token})
            assert r.status_code == 429
            # the proxy's other clients are not the sprayer
            assert (await sign_in(admin, project.admin_email, project.admin_password)).status_code == 303


async def test_sign_in_forms_without_a_session_are_capped_per_address(
    web: WebClient, settings, redis_client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sessions, "ANONYMOUS_PER_ADDRESS", 3)
    before = len([k async for k in redis_client.scan_iter(match=f"{settings.redis_prefix}session:*", count=1000)])
    flooder = await web(address="10.255.255.4")
    for _ in range(3):
        flooder.cookies.clear()
        assert (await flooder.get("/login")).status_code == 200
    flooder.cookies.clear()
    refused = await flooder.get("/login")
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    after = len([k async for k in redis_client.scan_iter(match=f"{settings.redis_prefix}session:*", count=1000)])
    assert after - before <= 3
    # a visitor who kept the cookie reuses the session it has; others are not affected
    kept = await web(address="10.255.255.5")
    for _ in range(5):
        assert (await kept.get("/login")).status_code == 200


async def test_cookie_is_secure_behind_a_trusted_tls_proxy_only(settings, project: Project) -> None:
    proxied = create_app(dataclasses.replace(settings, trusted_proxies=("10.254.0.0/24",)))
    async with proxied.router.lifespan_context(proxied):

        def from_peer(peer: str) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=proxied, client=(peer, 50000))
            return httpx.AsyncClient(transport=transport, base_url="http://testserver",
                                     headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "192.0.2.30"})

        async with from_peer("10.254.0.9") as proxy, from_peer("192.0.2.31") as stranger:
            # (the sign-in form's session cookie: a client would not send a Secure cookie back over http)
            r = await proxy.get("/login")
            assert r.status_code == 200 and "; secure" in _set_cookie_of(r).lower()
            # a client's own X-Forwarded-Proto is not believed
            r = await stranger.get("/login")
            assert r.status_code == 200 and "secure" not in _set_cookie_of(r).lower()
