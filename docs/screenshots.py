"""Regenerate the README's screenshots from the real demo (``make demo``'s server).

    .venv/bin/python docs/screenshots.py

Starts the example project with ``runserver`` on a throwaway SQLite database, seeds it,
plays the story in Debian's headless Chromium through Playwright (a guest clicks "Check
out", creates an account and checks out; another signs into the demo customer; a third
is purged, a fourth deletes itself, a fifth is still shopping), then opens the admin as
the demo staff account, and writes ``docs/screenshots/*.png``:

- ``guest-cart.png``: a guest's cart with the banner (README, quick start)
- ``merged-cart.png``: the demo customer's cart after a guest logged into it
- ``admin-guests.png``, ``admin-activity.png``, ``admin-users.png``: the admin's guest
  list, its activity chart, and the user list marking guests (quick start, audit page)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
PORT = 8765
BASE = f"http://127.0.0.1:{PORT}"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True)


def add_to_cart(page: Page, product: str) -> None:
    page.goto(f"{BASE}/")
    page.locator("#products li", has_text=product).get_by_role("button", name="Add to cart").click()
    expect(page.locator("#cart-items")).to_be_visible()


def delete_guest(page: Page) -> None:
    """The guest deletes itself through the API (``POST auth/anonymous/delete/``)."""
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    response = page.request.post(
        f"{BASE}/auth/anonymous/delete/", headers={"X-CSRFToken": csrf, "Referer": BASE}
    )
    assert response.status == 204, response.text()


def main() -> None:
    workdir = tempfile.mkdtemp()
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{workdir}/demo.sqlite3"}
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "seed_demo")
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{PORT}", "--noreload"],
        cwd=ROOT,
        env=env,
    )
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(BASE, timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=shutil.which("chromium"), args=ARGS, headless=True
            )
            view = {"viewport": {"width": 900, "height": 420}, "locale": "en-US"}

            page = browser.new_context(**view).new_page()  # a guest that creates an account
            add_to_cart(page, "Mug")
            page.screenshot(path=OUT / "guest-cart.png", full_page=True)
            page.locator("#checkout").click()  # told why, and offered both ways
            expect(page.get_by_text("Create an account or log in to check out")).to_be_visible()
            page.locator("#signup-link").click()
            page.get_by_label("Email").fill("shopper@example.com")
            page.get_by_label("Password").fill("a long demo passphrase")
            page.get_by_role("button", name="Create account").click()
            expect(page.get_by_text("Your account is ready")).to_be_visible()
            page.locator("#checkout").click()  # back at the cart: check out
            expect(page.get_by_text("placed. Thank you!")).to_be_visible()

            page = browser.new_context(**view).new_page()  # a guest that logs in
            add_to_cart(page, "Coffee beans")
            add_to_cart(page, "Grinder")
            page.locator("#login-link").click()
            page.get_by_label("Username").fill("customer")
            page.get_by_label("Password").fill("demo-customer-password")
            page.get_by_role("button", name="Log in").click()
            expect(page.get_by_text("what you added as a guest is in your cart")).to_be_visible()
            page.screenshot(path=OUT / "merged-cart.png", full_page=True)

            add_to_cart(browser.new_context(**view).new_page(), "Mug")  # never returns
            age_guests = (
                "from datetime import timedelta; from django.utils import timezone; "
                "from anonauth.models import Guest; "
                "Guest.objects.update(last_seen=timezone.now() - timedelta(days=31))"
            )
            manage(env, "shell", "-c", age_guests)  # the only guest so far: 31 days later
            manage(env, "purge_anonymous", "-v0")

            page = browser.new_context(**view).new_page()  # a guest that deletes itself
            add_to_cart(page, "Filter papers")
            delete_guest(page)
            for product in ("Grinder", "Mug"):  # guests still shopping
                add_to_cart(browser.new_context(**view).new_page(), product)

            # 1200 px: the guest list fits beside the admin's sidebar and its filters.
            admin = browser.new_context(
                viewport={"width": 1200, "height": 560}, locale="en-US"
            ).new_page()
            admin.goto(f"{BASE}/admin/login/?next=/admin/anonauth/guest/")
            admin.get_by_label("Username").fill("admin")
            admin.get_by_label("Password").fill("demo-admin-password")
            admin.get_by_role("button", name="Log in").click()
            expect(admin.locator("#result_list tbody tr")).to_have_count(2)
            admin.screenshot(path=OUT / "admin-guests.png", full_page=True)
            admin.get_by_role("link", name="Activity").click()
            expect(admin.locator("#activity-chart")).to_be_visible()
            admin.screenshot(path=OUT / "admin-activity.png", full_page=True)
            admin.goto(f"{BASE}/admin/auth/user/")
            expect(admin.locator("#result_list .column-is_guest")).to_be_visible()
            admin.screenshot(path=OUT / "admin-users.png", full_page=True)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"Screenshots written to {OUT.relative_to(ROOT)}/")


if __name__ == "__main__":
    main()
