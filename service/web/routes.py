"""The web routes: sign-in, the home page, project settings pages, their JSON endpoints, static files."""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from service.web import account, settings_pages, tokens_json
from service.web.render import HERE

_API = "/projects/{slug}/settings/api"


def routes() -> list[BaseRoute]:
    return [
        Route("/", account.home, methods=["GET"]),
        Route("/login", account.login_form, methods=["GET"]),
        Route("/login", account.login, methods=["POST"]),
        Route("/logout", account.logout, methods=["POST"]),
        Route("/projects/{slug}/settings", settings_pages.general, methods=["GET"]),
        Route(_API, settings_pages.api, methods=["GET"]),
        Route(_API, settings_pages.create, methods=["POST"]),
        Route(_API + "/revoke/{token_id}", settings_pages.revoke_confirm, methods=["GET"]),
        Route(_API + "/revoke/{token_id}", settings_pages.revoke, methods=["POST"]),
        Route(_API + "/tokens", tokens_json.list_tokens, methods=["GET"]),
        Route(_API + "/tokens", tokens_json.create_token, methods=["POST"]),
        Route(_API + "/tokens/{token_id}", tokens_json.revoke_token, methods=["DELETE"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
