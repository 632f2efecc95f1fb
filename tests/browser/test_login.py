"""Signing in and out of the console, and what a person sees when it fails."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_wrong_password_is_explained_in_words_and_nothing_is_stored(page: Any, demo_users: dict[str, Any]) -> None:
    page.goto("/")
    page.wait_for_url("**/#/login**")
    page.get_by_label("Email").fill(demo_users["owner"]["email"])
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert alert.text_content() == "That email and password don't match an account."
    assert page.evaluate("() => localStorage.getItem('ensemble.login')") is None
    assert page.locator("#nav").is_hidden()


def test_login_lands_on_the_dashboard_and_logout_forgets_the_tokens(
    page: Any, login: Callable[..., Any], demo_users: dict[str, Any]
) -> None:
    login(page, "owner")
    page.wait_for_url("**/#/dashboard")
    assert page.locator("#account-role").text_content() == "owner"
    assert page.get_by_role("link", name="Admin").is_visible()
    shown = page.locator("#account-name").text_content()
    assert shown and " · " in shown
    refresh_token = page.evaluate("() => JSON.parse(localStorage.getItem('ensemble.login')).refresh_token")
    assert refresh_token
    # A reload keeps the person signed in.
    page.reload()
    page.locator("#account-name").wait_for(state="visible")
    assert page.locator("#account-name").text_content() == shown

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/#/login**")
    assert page.evaluate("() => localStorage.getItem('ensemble.login')") is None
    # Revoked on the server, not only forgotten here.
    again = page.request.post("/api/v1/auth/refresh", data={"refresh_token": refresh_token})
    assert again.status == 401


def test_a_viewer_does_not_see_the_admin_page_link(page: Any, login: Callable[..., Any]) -> None:
    login(page, "viewer")
    assert page.locator("#account-role").text_content() == "viewer"
    assert page.get_by_role("link", name="Admin").is_hidden()


def test_an_unknown_page_says_so(page: Any, login: Callable[..., Any]) -> None:
    login(page, "owner")
    page.goto("/#/no-such-page")
    page.get_by_role("heading", name="Not found").wait_for()
    assert page.get_by_role("link", name="Go to the dashboard").is_visible()


def test_the_console_loads_without_script_errors(new_context: Callable[..., Any], login: Callable[..., Any]) -> None:
    context = new_context()
    page = context.new_page()
    login(page, "owner")
    for hash_ in ("#/dashboard", "#/sessions", "#/knowledge", "#/admin"):
        page.goto(f"/{hash_}")
        page.locator("main h1").first.wait_for()
    assert context.errors == []


def test_login_works_from_the_keyboard_alone(page: Any, demo_users: dict[str, Any]) -> None:
    page.goto("/#/login")
    email = page.get_by_label("Email")
    email.wait_for()
    assert page.evaluate("() => document.activeElement.name") == "email"  # focused on arrival
    page.keyboard.type(demo_users["technician"]["email"])
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.name") == "password"
    page.keyboard.type(demo_users["technician"]["password"])
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "Log in"
    page.keyboard.press("Enter")
    page.wait_for_url("**/#/dashboard")
    assert page.locator("#account-role").text_content() == "technician"


def test_the_skip_link_is_the_first_stop_and_jumps_to_the_content(page: Any, login: Callable[..., Any]) -> None:
    login(page, "owner")
    page.goto("/#/dashboard")
    page.locator("main h1").first.wait_for()
    first = page.evaluate(
        "() => document.querySelector('a[href], button, input, select, textarea, [tabindex]:not([tabindex=\"-1\"])').textContent"
    )
    assert first == "Skip to content"
    skip = page.get_by_role("link", name="Skip to content")
    skip.focus()
    assert skip.is_visible()  # shown when focused, off-screen otherwise
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "main"
