"""The page in a real browser: Debian's Chromium, driven by Playwright, against a real `pathpro serve`."""

from __future__ import annotations

import shutil

import httpx
from playwright.async_api import async_playwright, expect

from service import tokens
from tests.conftest import Project

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


async def test_sign_in_create_use_revoke(run_server, project: Project) -> None:
    server = run_server()
    settings_api = f"{server.url}/projects/{project.slug}/settings/api"
    async with async_playwright() as p, httpx.AsyncClient(base_url=server.url, timeout=10) as api:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = await browser.new_context(viewport={"width": 390, "height": 844})
            await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
            page = await context.new_page()
            page.set_default_timeout(10_000)

            # signed out: sent to sign in, then back to the page
            await page.goto(settings_api)
            await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
            await page.get_by_label("Email").fill(project.admin_email)
            await page.get_by_label("Password").fill(project.admin_password)
            await page.get_by_role("button", name="Sign in").click()
            await expect(page.get_by_role("heading", name="API Tokens")).to_be_visible()
            assert page.url == settings_api

            # create: the token is shown once, with a copy button that works
            await page.get_by_label("Name").fill("CI/CD Pipeline")
            await page.get_by_role("button", name="Create token").click()
            field = page.locator("#new-token")
            await expect(field).to_be_visible()
            token = await field.input_value()
            assert tokens.well_formed(token) and token.startswith("pk_live_")
            await expect(page.locator(".reveal")).to_contain_text("in an environment variable, a secrets")
            await page.get_by_role("button", name="Copy").click()
            await expect(page.get_by_role("button", name="Copied")).to_be_visible()
            assert await page.evaluate("navigator.clipboard.readText()") == token

            auth = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
            assert (await api.get("/api/v1/tasks", headers=auth)).status_code == 200

            # a reload does not show it again
            await page.reload()
            await expect(page.get_by_role("heading", name="API Tokens")).to_be_visible()
            assert await page.locator("#new-token").count() == 0
            assert token not in await page.content()
            row = page.locator("tr", has_text="CI/CD Pipeline")
            await expect(row).to_contain_text(f"pk_live_****{token[-4:]}")

            # revoke, through the confirmation step
            await row.get_by_role("link", name="Revoke").click()
            await expect(page.get_by_role("heading", name="Revoke “CI/CD Pipeline”?")).to_be_visible()
            await page.get_by_role("button", name="Revoke token").click()
            await expect(page.get_by_text("was revoked")).to_be_visible()
            await expect(page.locator("tr", has_text="CI/CD Pipeline")).to_contain_text("Revoked")

            assert (await api.get("/api/v1/tasks", headers=auth)).status_code == 401
            assert (await api.get("/api/v1/tasks", headers=project.headers)).status_code == 200
        finally:
            await browser.close()
