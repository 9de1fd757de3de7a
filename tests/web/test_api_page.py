"""The Settings > API page and its JSON endpoints: roles, creating, showing once, revoking, CSRF."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, date, datetime, timedelta, timezone

import httpx
import pytest

from service import tokens
from service.web import sessions
from service.web.render import created_label, last_used_label
from tests.conftest import Project, make_project
from tests.web.conftest import WebClient, add_member, csrf_from, page_csrf, signed_in

_NEW_TOKEN = re.compile(r'id="new-token"[^>]*value="(pk_(?:live|test)_[A-Za-z0-9]+)"')


def _api(project: Project, rest: str = "") -> str:
    return f"/projects/{project.slug}/settings/api{rest}"


async def _admin(web: WebClient, project: Project) -> httpx.AsyncClient:
    return await signed_in(web, project.admin_email, project.admin_password)


async def _create(c: httpx.AsyncClient, project: Project, name: str, mode: str = "live") -> str:
    r = await c.post(
        _api(project), data={"csrf_token": await page_csrf(c, project), "name": name, "mode": mode}
    )
    assert r.status_code == 303 and r.headers["location"] == _api(project)
    page = await c.get(_api(project))
    match = _NEW_TOKEN.search(page.text)
    assert match, "the new token is not on the page"
    return match.group(1)


async def _token_count(pool, project: Project) -> int:
    return await pool.fetchval("SELECT count(*) FROM api_tokens WHERE project_id = $1", project.id)


# --- who may see and use the page -------------------------------------------------------------


async def test_admin_sees_the_page_and_the_tab(web: WebClient, project: Project) -> None:
    c = await _admin(web, project)
    r = await c.get(_api(project))
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    for text in (
        "API Tokens",
        "Name",
        "Token",
        "Created",
        "Last Used",
        "Create New Token",
        "Test token",
        "Revoked tokens are invalidated immediately. Rate limit: 60 requests/min per token.",
    ):
        assert text in r.text
    assert r.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    general = await c.get(f"/projects/{project.slug}/settings")
    assert general.status_code == 200 and f'href="{_api(project)}"' in general.text


@pytest.mark.parametrize("role", ["team_member", "community_member"])
async def test_members_who_are_not_admins_get_403_and_no_tab(
    web: WebClient, project: Project, pool, role: str
) -> None:
    c = await signed_in(web, *await add_member(pool, project.slug, role))
    general = await c.get(f"/projects/{project.slug}/settings")
    assert general.status_code == 200 and "General" in general.text
    assert _api(project) not in general.text
    token = csrf_from(general.text)

    page = await c.get(_api(project))
    assert page.status_code == 403 and "text/html" in page.headers["content-type"]
    assert "Only the project&#39;s admins" in page.text and "pk_live_****" not in page.text
    assert (await c.get(_api(project, f"/revoke/{project.token_id}"))).status_code == 403
    created = await c.post(_api(project), data={"csrf_token": token, "name": "sneaky"})
    assert created.status_code == 403
    revoked = await c.post(_api(project, f"/revoke/{project.token_id}"), data={"csrf_token": token})
    assert revoked.status_code == 403

    listed = await c.get(_api(project, "/tokens"))
    assert listed.status_code == 403 and listed.json()["error"]["code"] == "forbidden"
    made = await c.post(_api(project, "/tokens"), json={"name": "x"}, headers={"X-CSRF-Token": token})
    assert made.status_code == 403 and made.json()["error"]["code"] == "forbidden"
    gone = await c.delete(_api(project, f"/tokens/{project.token_id}"), headers={"X-CSRF-Token": token})
    assert gone.status_code == 403
    assert await _token_count(pool, project) == 1
    assert (await c.get("/api/v1/tasks", headers=project.headers)).status_code == 200


async def test_admin_of_another_project_gets_404(web: WebClient, project: Project, pool) -> None:
    other = await make_project(pool)
    c = await _admin(web, other)
    token = await page_csrf(c, other)
    page = await c.get(_api(project))
    assert page.status_code == 404 and "text/html" in page.headers["content-type"]
    assert (await c.get(f"/projects/{project.slug}/settings")).status_code == 404
    assert (await c.get(_api(project, f"/revoke/{project.token_id}"))).status_code == 404
    assert (await c.post(_api(project), data={"csrf_token": token, "name": "x"})).status_code == 404
    assert (
        await c.post(_api(project, f"/revoke/{project.token_id}"), data={"csrf_token": token})
    ).status_code == 404
    listed = await c.get(_api(project, "/tokens"))
    assert listed.status_code == 404 and listed.json()["error"]["code"] == "not_found"
    assert (
        await c.post(_api(project, "/tokens"), json={"name": "x"}, headers={"X-CSRF-Token": token})
    ).status_code == 404
    assert (
        await c.delete(_api(project, f"/tokens/{project.token_id}"), headers={"X-CSRF-Token": token})
    ).status_code == 404
    # the same as a project that does not exist
    assert (await c.get("/projects/no-such-project/settings/api")).status_code == 404
    assert await _token_count(pool, project) == 1
    assert (await c.get("/api/v1/tasks", headers=project.headers)).status_code == 200


async def test_signed_out_visitors_are_sent_to_sign_in(web: WebClient, project: Project) -> None:
    c = await web()
    for path in (
        _api(project),
        f"/projects/{project.slug}/settings",
        _api(project, f"/revoke/{project.token_id}"),
    ):
        r = await c.get(path)
        assert r.status_code == 303 and r.headers["location"] == f"/login?next={path}"
    r = await c.post(_api(project), data={"name": "x", "csrf_token": "x"})
    assert r.status_code == 303 and r.headers["location"] == f"/login?next={_api(project)}"
    assert (await c.get("/")).headers["location"] == "/login"


async def test_signed_out_json_callers_get_401_json(web: WebClient, project: Project, pool) -> None:
    c = await web()
    for r in (
        await c.get(_api(project, "/tokens")),
        await c.post(_api(project, "/tokens"), json={"name": "x"}),
        await c.delete(_api(project, f"/tokens/{project.token_id}")),
    ):
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "sign_in_required"
    assert await _token_count(pool, project) == 1


# --- creating, showing once, revoking through the page -----------------------------------------


async def test_new_token_is_shown_once_and_works(web: WebClient, project: Project, pool, client) -> None:
    c = await _admin(web, project)
    token = await _create(c, project, "CI/CD Pipeline")

    assert tokens.well_formed(token) and token.startswith("pk_live_")
    assert (
        await client.get("/api/v1/tasks", headers={"Authorization": f"Bearer {token}"})
    ).status_code == 200

    again = await c.get(_api(project))
    assert token not in again.text and 'id="new-token"' not in again.text
    assert f"pk_live_****{token[-4:]}" in again.text and "CI/CD Pipeline" in again.text
    listed = await c.get(_api(project, "/tokens"))
    assert token not in listed.text
    assert {"name": "CI/CD Pipeline", "masked_token": f"pk_live_****{token[-4:]}"}.items() <= listed.json()[
        "data"
    ][0].items()
    assert (
        await pool.fetchval("SELECT created_by FROM api_tokens WHERE digest = $1", tokens.digest(token))
        == project.admin_id
    )


async def test_a_new_token_is_never_shown_in_another_session(web: WebClient, project: Project) -> None:
    c = await _admin(web, project)
    r = await c.post(_api(project), data={"csrf_token": await page_csrf(c, project), "name": "Jira Sync"})
    assert r.status_code == 303
    other = await _admin(web, project)
    assert 'id="new-token"' not in (await other.get(_api(project))).text
    assert 'id="new-token"' in (await c.get(_api(project))).text


async def test_test_mode_tokens(web: WebClient, project: Project) -> None:
    c = await _admin(web, project)
    token = await _create(c, project, "Development", mode="test")
    assert token.startswith("pk_test_") and tokens.well_formed(token)
    assert f"pk_test_****{token[-4:]}" in (await c.get(_api(project))).text


_FORM_PROBLEMS = [
    ("", "live", "Give the token a name."),
    ("   ", "live", "Give the token a name."),
    ("x" * 256, "live", "Use at most 255 characters."),
    ("ok", "prod", "Choose live or test."),
]


async def test_create_form_problems_are_shown_and_nothing_is_created(
    web: WebClient, project: Project, pool
) -> None:
    c = await _admin(web, project)
    csrf = await page_csrf(c, project)
    for name, mode, problem in _FORM_PROBLEMS:
        r = await c.post(_api(project), data={"csrf_token": csrf, "name": name, "mode": mode})
        assert r.status_code == 422 and problem in r.text, (name, mode)
    assert await _token_count(pool, project) == 1


async def test_revoke_asks_first_then_revokes(web: WebClient, project: Project, pool, client) -> None:
    c = await _admin(web, project)
    page = await c.get(_api(project))
    link = _api(project, f"/revoke/{project.token_id}")
    assert f'href="{link}"' in page.text

    confirm = await c.get(link)
    assert confirm.status_code == 200
    assert "Revoke “Test token”?" in confirm.text and f'action="{link}"' in confirm.text
    # asking is not revoking
    assert await pool.fetchval("SELECT revoked_at FROM api_tokens WHERE id = $1", project.token_id) is None
    assert (await client.get("/api/v1/tasks", headers=project.headers)).status_code == 200

    r = await c.post(link, data={"csrf_token": csrf_from(confirm.text)})
    assert r.status_code == 303 and r.headers["location"] == _api(project)
    assert (await client.get("/api/v1/tasks", headers=project.headers)).status_code == 401
    after = await c.get(_api(project))
    assert "was revoked" in after.text and "Revoked" in after.text
    assert f'href="{link}"' not in after.text
    # a second confirmation of a revoked token just goes back; a second revoke is harmless
    assert (await c.get(link)).status_code == 303
    assert (await c.post(link, data={"csrf_token": csrf_from(after.text)})).status_code == 303


async def test_revoking_one_token_leaves_the_others(web: WebClient, project: Project, client) -> None:
    c = await _admin(web, project)
    keep = await _create(c, project, "Keep")
    r = await c.post(
        _api(project, f"/revoke/{project.token_id}"), data={"csrf_token": await page_csrf(c, project)}
    )
    assert r.status_code == 303
    assert (await client.get("/api/v1/tasks", headers=project.headers)).status_code == 401
    assert (await client.get("/api/v1/tasks", headers={"Authorization": f"Bearer {keep}"})).status_code == 200


async def test_unknown_token_ids_are_404(web: WebClient, project: Project) -> None:
    c = await _admin(web, project)
    csrf = await page_csrf(c, project)
    for token_id in ("999999999", "abc", "0", "99999999999999999999", "-1", "1e3"):
        r = await c.get(_api(project, f"/revoke/{token_id}"))
        assert r.status_code == 404 and "text/html" in r.headers["content-type"], token_id
        assert (
            await c.post(_api(project, f"/revoke/{token_id}"), data={"csrf_token": csrf})
        ).status_code == 404
        r = await c.delete(_api(project, f"/tokens/{token_id}"), headers={"X-CSRF-Token": csrf})
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", token_id


async def test_another_projects_token_cannot_be_revoked_here(
    web: WebClient, project: Project, pool, client
) -> None:
    other = await make_project(pool)
    c = await _admin(web, project)
    token = await page_csrf(c, project)
    assert (
        await c.post(_api(project, f"/revoke/{other.token_id}"), data={"csrf_token": token})
    ).status_code == 404
    assert (
        await c.delete(_api(project, f"/tokens/{other.token_id}"), headers={"X-CSRF-Token": token})
    ).status_code == 404
    assert (await client.get("/api/v1/tasks", headers=other.headers)).status_code == 200


# --- the table's dates ------------------------------------------------------------------------


def test_last_used_labels() -> None:
    today = date(2026, 2, 17)
    utc = UTC
    assert last_used_label(None, today) == "Never used"
    assert last_used_label(datetime(2026, 2, 17, 0, 0, 1, tzinfo=utc), today) == "Today"
    assert last_used_label(datetime(2026, 2, 16, 23, 59, tzinfo=utc), today) == "Yesterday"
    assert last_used_label(datetime(2026, 2, 15, 12, tzinfo=utc), today) == "Feb 15, 2026"
    assert last_used_label(datetime(2025, 12, 12, 9, tzinfo=utc), today) == "Dec 12, 2025"
    # kept in UTC whatever the zone of the value
    assert (
        last_used_label(datetime(2026, 2, 17, 1, tzinfo=timezone(timedelta(hours=3))), today) == "Yesterday"
    )
    assert created_label(datetime(2026, 1, 5, 10, 30, tzinfo=utc)) == "Jan 5, 2026"


async def test_the_table_shows_created_and_last_used(web: WebClient, pool) -> None:
    project = await make_project(pool, rate_limit=120)
    c = await _admin(web, project)
    rows = {
        "Production API": ("2026-01-05 10:00+00", "now()"),
        "CI/CD Pipeline": ("2025-12-12 10:00+00", "now() - interval '1 day'"),
        "Old Sync": ("2025-06-01 10:00+00", "'2025-08-02 08:00+00'"),
        "Development": ("2026-02-14 10:00+00", "NULL"),
    }
    for name, (created, used) in rows.items():
        token_id, _ = await tokens.create(pool, project.id, name, "live")
        await pool.execute(
            f"UPDATE api_tokens SET created_at = $2::text::timestamptz, last_used_at = {used} WHERE id = $1",
            token_id,
            created,
        )
    page = (await c.get(_api(project))).text

    def row_of(name: str) -> str:
        start = page.index(f"</span>{name}</td>")
        return page[start : page.index("</tr>", start)]

    assert "Jan 5, 2026" in row_of("Production API") and ">Today<" in row_of("Production API")
    assert "Dec 12, 2025" in row_of("CI/CD Pipeline") and ">Yesterday<" in row_of("CI/CD Pipeline")
    assert "Jun 1, 2025" in row_of("Old Sync") and ">Aug 2, 2025<" in row_of("Old Sync")
    assert "Feb 14, 2026" in row_of("Development") and ">Never used<" in row_of("Development")
    assert "Rate limit: 120 requests/min per token." in page


# --- the JSON endpoints -----------------------------------------------------------------------


async def test_json_create_list_and_revoke(web: WebClient, project: Project, client) -> None:
    c = await _admin(web, project)
    csrf = {"X-CSRF-Token": await page_csrf(c, project)}

    r = await c.post(_api(project, "/tokens"), json={"name": " Jira Sync ", "mode": "test"}, headers=csrf)
    assert r.status_code == 201
    data = r.json()["data"]
    plaintext = data["token"]
    assert tokens.well_formed(plaintext) and plaintext.startswith("pk_test_")
    assert data == {
        "id": data["id"],
        "name": "Jira Sync",
        "mode": "test",
        "token": plaintext,
        "masked_token": f"pk_test_****{plaintext[-4:]}",
    }
    assert r.headers["cache-control"] == "no-store"

    listed = await c.get(_api(project, "/tokens"))
    assert listed.status_code == 200 and plaintext not in listed.text
    first = listed.json()["data"][0]
    assert first["id"] == data["id"] and first["masked_token"] == data["masked_token"]
    assert first["last_used_at"] is None and first["revoked_at"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", first["created_at"])
    assert plaintext not in (await c.get(_api(project))).text

    auth = {"Authorization": f"Bearer {plaintext}"}
    assert (await client.get("/api/v1/tasks", headers=auth)).status_code == 200
    gone = await c.delete(_api(project, f"/tokens/{data['id']}"), headers=csrf)
    assert gone.status_code == 204 and gone.content == b""
    assert (await client.get("/api/v1/tasks", headers=auth)).status_code == 401
    assert (await c.delete(_api(project, f"/tokens/{data['id']}"), headers=csrf)).status_code == 204
    revoked = (await c.get(_api(project, "/tokens"))).json()["data"][0]
    assert revoked["revoked_at"] is not None


_BAD_BODIES = [
    ({}, {"name"}),
    ({"name": ""}, {"name"}),
    ({"name": "   "}, {"name"}),
    ({"name": "x" * 256}, {"name"}),
    ({"name": "nul\u0000"}, {"name"}),
    ({"name": "ok", "mode": "prod"}, {"mode"}),
    ({"name": "ok", "token": "pk_live_mine"}, {"token"}),
    ({"name": 5, "mode": None}, {"name", "mode"}),
]


async def test_json_create_refuses_bad_bodies(web: WebClient, project: Project, pool) -> None:
    c = await _admin(web, project)
    csrf = {"X-CSRF-Token": await page_csrf(c, project)}
    for body, fields in _BAD_BODIES:
        r = await c.post(_api(project, "/tokens"), json=body, headers=csrf)
        assert r.status_code == 422, body
        assert r.json()["error"]["code"] == "validation_failed" and set(r.json()["error"]["fields"]) == fields
    r = await c.post(_api(project, "/tokens"), json=["name"], headers=csrf)
    assert r.status_code == 422
    assert await _token_count(pool, project) == 1


async def test_json_create_wants_json(web: WebClient, project: Project, pool) -> None:
    c = await _admin(web, project)
    csrf = {"X-CSRF-Token": await page_csrf(c, project)}
    r = await c.post(
        _api(project, "/tokens"), content=b"name=x", headers={**csrf, "Content-Type": "text/plain"}
    )
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
    r = await c.post(
        _api(project, "/tokens"), content=b"{nope", headers={**csrf, "Content-Type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request"
    assert await _token_count(pool, project) == 1


# --- CSRF on every state-changing request -------------------------------------------------------


async def test_every_state_changing_request_needs_the_sessions_csrf_token(
    web: WebClient, project: Project, pool, client
) -> None:
    c = await _admin(web, project)
    other_session = await _admin(web, project)
    foreign = await page_csrf(other_session, project)  # valid, but another session's
    revoke_form = _api(project, f"/revoke/{project.token_id}")
    json_revoke = _api(project, f"/tokens/{project.token_id}")

    for sent in (None, "", "forged", foreign):
        form = {} if sent is None else {"csrf_token": sent}
        header = {} if sent is None else {"X-CSRF-Token": sent}
        attempts = [
            await c.post(_api(project), data={**form, "name": "via form"}),
            await c.post(revoke_form, data=form),
            await c.post(_api(project, "/tokens"), json={"name": "via json"}, headers=header),
            await c.delete(json_revoke, headers=header),
            await c.post("/logout", data=form),
        ]
        for r in attempts:
            assert r.status_code == 403, (sent, r.request.url)
        assert [r.headers["content-type"].split(";")[0] for r in attempts] == [
            "text/html",
            "text/html",
            "application/json",
            "application/json",
            "text/html",
        ]
        assert attempts[2].json()["error"]["code"] == "csrf_failed"
        # a JSON endpoint does not take the token from a form field, nor a form from a header
        assert (
            await c.post(_api(project), data={"name": "x"}, headers={"X-CSRF-Token": foreign})
        ).status_code == 403

    assert await _token_count(pool, project) == 1
    assert (await client.get("/api/v1/tasks", headers=project.headers)).status_code == 200
    assert (await c.get(_api(project))).status_code == 200  # still signed in


# --- errors: HTML for pages, JSON for the API ---------------------------------------------------


async def test_pages_get_html_errors_and_the_api_json_errors(web: WebClient, project: Project) -> None:
    c = await _admin(web, project)
    page = await c.get(f"/projects/{project.slug}/settings/nope")
    assert page.status_code == 404 and "text/html" in page.headers["content-type"]
    assert "Page not found" in page.text
    wrong_method = await c.put(_api(project))
    assert wrong_method.status_code == 405 and "text/html" in wrong_method.headers["content-type"]
    api = await c.get("/api/v1/nope", headers=project.headers)
    assert api.status_code == 404 and api.json()["error"]["code"] == "not_found"
    json_endpoint = await c.put(_api(project, "/tokens"))
    assert json_endpoint.status_code == 405 and json_endpoint.json()["error"]["code"] == "method_not_allowed"


async def test_home_lists_the_users_projects(web: WebClient, project: Project, pool) -> None:
    c = await _admin(web, project)
    other = await make_project(pool)
    home = await c.get("/")
    assert home.status_code == 200
    assert f'href="/projects/{project.slug}/settings"' in home.text
    assert other.slug not in home.text


async def test_the_one_time_value_is_short_lived_and_gone_once_shown(
    web: WebClient, project: Project, settings, redis_client
) -> None:
    c = await _admin(web, project)
    r = await c.post(_api(project), data={"csrf_token": await page_csrf(c, project), "name": "Once"})
    assert r.status_code == 303
    digest = hashlib.sha256(c.cookies[sessions.COOKIE].encode()).hexdigest()
    once_key = f"{settings.redis_prefix}once:{digest}"
    assert 0 < await redis_client.ttl(once_key) <= sessions.ONCE_TTL
    assert 'id="new-token"' in (await c.get(_api(project))).text
    assert not await redis_client.exists(once_key)
