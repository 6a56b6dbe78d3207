"""Regenerate the README's screenshots from the real demo (``make demo``'s server).

    .venv/bin/python docs/screenshots.py

Starts the example project with ``runserver`` on a throwaway SQLite database, seeds it,
plays the story in Debian's headless Chromium through Playwright (a guest upgrades,
another signs into the demo customer, a third is purged), then opens the admin as the
demo staff account, and writes ``docs/screenshots/*.png``.
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
            page.locator("#upgrade-link").click()
            page.get_by_label("Email").fill("shopper@example.com")
            page.get_by_label("Password").fill("a long demo passphrase")
            page.get_by_role("button", name="Create account").click()
            expect(page.get_by_text("Your account is ready")).to_be_visible()

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
            time.sleep(1.1)
            manage(env, "purge_anonymous", "--older-than", "1s", "-v0")

            admin = browser.new_context(
                viewport={"width": 1100, "height": 640}, locale="en-US"
            ).new_page()
            admin.goto(f"{BASE}/admin/login/?next=/admin/anonauth/guest/activity/")
            admin.get_by_label("Username").fill("admin")
            admin.get_by_label("Password").fill("demo-admin-password")
            admin.get_by_role("button", name="Log in").click()
            expect(admin.locator("#activity-chart")).to_be_visible()
            admin.screenshot(path=OUT / "admin-activity.png", full_page=True)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"Screenshots written to {OUT.relative_to(ROOT)}/")


if __name__ == "__main__":
    main()
