"""The example shop in a real browser: headless Chromium (Debian's ``chromium`` package,
never a downloaded one) driven by Playwright against a live server.

A guest adds to the cart, creates an account (the cart stays), logs out, logs back in
and checks out; a second guest signs into the seeded demo customer and finds both carts
merged; guests who click "Check out" are told why they cannot, and come back to their
cart after creating an account or logging in, with no error page on the way. Each step
leaves a screenshot in ``test-output/browser/``.
"""

from __future__ import annotations

import io
import re
import shutil
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from anonauth.guests import is_guest
from anonauth.models import Guest
from example_project.shop.management.commands.seed_demo import (
    CUSTOMER_PASSWORD,
    CUSTOMER_USERNAME,
)
from example_project.shop.models import Cart, Order

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - CI installs it with the test extra
    sync_playwright = None

CHROMIUM = shutil.which("chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-output" / "browser"
TIMEOUT_MS = 10_000
PASSWORD = "correct-horse-42"

pytestmark = [
    pytest.mark.skipif(
        sync_playwright is None, reason="playwright is not installed (the test extra has it)"
    ),
    pytest.mark.skipif(
        CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install chromium)"
    ),
    # The shop's upgrade makes the email the username, and its login asks for a username.
    pytest.mark.auth_user_only,
]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """One headless Chromium for the module; each test gets a fresh context (no cookies)."""
    with pytest.MonkeyPatch.context() as patch:
        # Playwright's sync API runs an event loop in this thread, and Django refuses
        # ORM calls next to a running loop; the test's own ORM checks are synchronous.
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
            yield browser
            browser.close()


@pytest.fixture
def page(
    chromium: Browser, live_server: Any, settings: Any, request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A page of a new browser context on the live server, with the demo seeded.

    A failing test leaves a screenshot of where it stopped: ``FAILED-<test>.png``.
    """
    # As in example_project/settings.py: the demo's URLs (its logout says so), and the
    # shop, not the admin, after logging in or out.
    settings.ROOT_URLCONF = "example_project.urls"
    settings.LOGIN_REDIRECT_URL = "/"
    settings.LOGOUT_REDIRECT_URL = "/"
    call_command("seed_demo", stdout=io.StringIO())
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = chromium.new_context(
        base_url=live_server.url, viewport={"width": 900, "height": 420}, locale="en-US"
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    failures = request.session.testsfailed
    yield page
    if request.session.testsfailed > failures:  # the call phase is reported before teardown
        shot(page, f"FAILED-{request.node.name}")
    context.close()


def shot(page: Page, name: str) -> None:
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def line(quantity: int, product: str) -> str:
    """A cart line as the cart page shows it."""
    return f"{quantity} \N{MULTIPLICATION SIGN} {product}"


def error_pages(page: Page) -> list[str]:
    """The pages (documents, not assets) that answer 4xx or 5xx from now on, as they come."""
    errors: list[str] = []

    def check(response: Any) -> None:
        if response.request.resource_type == "document" and response.status >= 400:
            errors.append(f"{response.status} {response.request.method} {response.url}")

    page.on("response", check)
    return errors


def add_to_cart(page: Page, product: str) -> None:
    page.goto("/")
    page.locator("#products li", has_text=product).get_by_role("button", name="Add to cart").click()
    expect(page).to_have_url(re.compile(r"/cart/$"))


def test_a_guest_upgrades_logs_out_and_finds_the_cart_again(page: Page) -> None:
    page.goto("/")
    expect(page.locator("#products li")).to_have_count(4)
    expect(page.locator("#guest-banner")).to_have_count(0)
    shot(page, "01-products")

    add_to_cart(page, "Mug")
    expect(page.locator("#cart-items li")).to_have_text([line(1, "Mug")])
    expect(page.locator("#guest-banner")).to_be_visible()
    guest_id = Guest.objects.get().user_id
    shot(page, "02-guest-cart")

    page.locator("#upgrade-link").click()
    page.get_by_label("Email").fill("shopper@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    shot(page, "03-create-account")

    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_text("Your account is ready")).to_be_visible()
    expect(page.locator("#cart-items li")).to_have_text([line(1, "Mug")])
    expect(page.locator("#guest-banner")).to_have_count(0)
    expect(page.get_by_text("Signed in as shopper@example.com")).to_be_visible()
    account = get_user_model().objects.get(pk=guest_id)  # upgraded in place
    assert not is_guest(account)
    shot(page, "04-account-cart")

    page.get_by_role("button", name="Log out").click()
    expect(page.locator("#login-link")).to_be_visible()
    expect(page.get_by_text("You are signed out.")).to_be_visible()
    page.get_by_role("link", name="Cart").click()
    expect(page.get_by_text("Your cart is empty")).to_be_visible()
    shot(page, "05-logged-out")

    page.locator("#login-link").click()
    page.get_by_label("Username").fill("shopper@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    shot(page, "06-log-in")

    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#cart-items li")).to_have_text([line(1, "Mug")])
    expect(page.locator("#guest-banner")).to_have_count(0)
    shot(page, "07-cart-after-login")

    page.locator("#checkout").click()
    expect(page.get_by_text("placed. Thank you!")).to_be_visible()
    assert Order.objects.get(customer=account).total == Decimal("8.00")
    assert not Guest.objects.exists()
    shot(page, "08-checked-out")


def test_a_guest_signs_into_an_existing_account_and_the_carts_merge(page: Page) -> None:
    customer = get_user_model().objects.get(username=CUSTOMER_USERNAME)
    assert [str(item) for item in Cart.objects.get(owner=customer).items.all()] == [
        "1 x Coffee beans"
    ]
    add_to_cart(page, "Coffee beans")
    add_to_cart(page, "Grinder")
    expect(page.locator("#cart-items li")).to_have_text(
        [line(1, "Coffee beans"), line(1, "Grinder")]
    )
    expect(page.locator("#guest-banner")).to_be_visible()
    shot(page, "09-second-guest-cart")

    page.locator("#guest-banner").get_by_role("link", name="log in", exact=True).click()
    page.get_by_label("Username").fill(CUSTOMER_USERNAME)
    page.get_by_label("Password").fill(CUSTOMER_PASSWORD)
    shot(page, "10-log-in-existing-account")

    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/cart/$"))  # back where the guest clicked "log in"
    expect(page.locator("#cart-items li")).to_have_text(
        [line(2, "Coffee beans"), line(1, "Grinder")]
    )
    expect(page.get_by_text(f"Signed in as {CUSTOMER_USERNAME}")).to_be_visible()
    expect(page.get_by_text("what you added as a guest is in your cart")).to_be_visible()
    expect(page.locator("#guest-banner")).to_have_count(0)
    assert not Guest.objects.exists()  # linked into the account, then deleted
    assert Cart.objects.get().owner == customer  # the guest's cart was merged, then dropped
    shot(page, "11-merged-cart")


def check_out_as_a_guest(page: Page) -> None:
    """Click "Check out" as a guest: the login page says why, and offers both ways."""
    page.locator("#checkout").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=%2Fcart%2F$"))
    expect(page.get_by_text("Create an account or log in to check out")).to_be_visible()
    expect(page.locator("#signup-link")).to_be_visible()
    assert not Order.objects.exists()


def test_a_guest_at_checkout_creates_an_account_and_checks_out(page: Page) -> None:
    errors = error_pages(page)
    add_to_cart(page, "Mug")
    guest_id = Guest.objects.get().user_id
    check_out_as_a_guest(page)
    shot(page, "14-checkout-as-guest")

    page.locator("#signup-link").click()
    page.get_by_label("Email").fill("buyer@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(re.compile(r"/cart/$"))  # back to the cart, not the checkout
    expect(page.locator("#cart-items li")).to_have_text([line(1, "Mug")])
    shot(page, "15-checkout-after-sign-up")

    page.locator("#checkout").click()
    expect(page.get_by_text("placed. Thank you!")).to_be_visible()
    assert Order.objects.get().customer_id == guest_id  # the upgraded guest
    assert errors == []


def test_a_guest_at_checkout_logs_into_the_customer_and_checks_out(page: Page) -> None:
    errors = error_pages(page)
    add_to_cart(page, "Grinder")
    check_out_as_a_guest(page)

    page.get_by_label("Username").fill(CUSTOMER_USERNAME)
    page.get_by_label("Password").fill(CUSTOMER_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/cart/$"))  # not a 405 from GET /checkout/
    expect(page.locator("#cart-items li")).to_have_text(
        [line(1, "Coffee beans"), line(1, "Grinder")]
    )
    expect(page.get_by_text(f"Signed in as {CUSTOMER_USERNAME}")).to_be_visible()
    shot(page, "16-checkout-after-log-in")

    page.locator("#checkout").click()
    expect(page.get_by_text("placed. Thank you!")).to_be_visible()
    customer = get_user_model().objects.get(username=CUSTOMER_USERNAME)
    assert Order.objects.get(customer=customer).total == Decimal("62.40")
    assert not Guest.objects.exists()
    assert errors == []


def test_staff_sees_the_guests_and_the_activity_chart(
    chromium: Browser, page: Page, live_server: Any
) -> None:
    """Real events from the shop (created, upgraded, linked, purged), then the admin."""
    from datetime import timedelta

    from anonauth.purge import purge_guests
    from example_project.shop.management.commands.seed_demo import (
        STAFF_PASSWORD,
        STAFF_USERNAME,
    )

    add_to_cart(page, "Mug")  # a guest that creates an account
    page.locator("#upgrade-link").click()
    page.get_by_label("Email").fill("shopper@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_text("Your account is ready")).to_be_visible()

    linking = chromium.new_context(base_url=live_server.url)  # a guest that logs in
    linking_page = linking.new_page()
    add_to_cart(linking_page, "Grinder")
    linking_page.goto("/accounts/login/")
    linking_page.get_by_label("Username").fill(CUSTOMER_USERNAME)
    linking_page.get_by_label("Password").fill(CUSTOMER_PASSWORD)
    linking_page.get_by_role("button", name="Log in").click()
    expect(linking_page.get_by_text(f"Signed in as {CUSTOMER_USERNAME}")).to_be_visible()
    linking.close()

    leaving = chromium.new_context(base_url=live_server.url)  # a guest that never returns
    add_to_cart(leaving.new_page(), "Mug")
    leaving.close()
    assert purge_guests(older_than=timedelta(0)).purged == 1

    staff = chromium.new_context(
        base_url=live_server.url, viewport={"width": 1100, "height": 560}, locale="en-US"
    )
    admin = staff.new_page()
    admin.goto("/admin/login/?next=/admin/anonauth/guest/")
    admin.get_by_label("Username").fill(STAFF_USERNAME)
    admin.get_by_label("Password").fill(STAFF_PASSWORD)
    admin.get_by_role("button", name="Log in").click()
    expect(admin.get_by_role("link", name="Activity")).to_be_visible()
    expect(admin.locator(".breadcrumbs")).to_have_text(
        re.compile(r"Home\W+Guest users\W+Guests\s*$")
    )
    shot(admin, "12-admin-guests")

    admin.get_by_role("link", name="Activity").click()
    expect(admin.locator("#activity-chart")).to_be_visible()
    expect(admin.locator("#activity-chart rect")).to_have_count(4)  # today: four kinds
    expect(admin.locator("#activity-totals td")).to_have_text(
        ["3", "1", "1", "1", "0", "0"]
    )  # ..., purged, transferred
    expect(admin.locator("#conversion-rate")).to_have_text("67%")
    shot(admin, "13-admin-activity")

    staying = chromium.new_context(base_url=live_server.url)  # a guest still shopping
    add_to_cart(staying.new_page(), "Mug")
    staying.close()
    admin.goto("/admin/auth/user/")  # where staff look for people: guests are marked
    admin.locator("#changelist-filter").get_by_role("link", name="Guests").click()
    expect(admin.locator("#result_list tbody tr")).to_have_count(1)
    expect(admin.locator("#result_list tbody .field-is_guest img")).to_have_attribute("alt", "True")
    shot(admin, "17-admin-users-guests")
    admin.goto("/admin/anonauth/guest/")
    admin.locator("#result_list tbody .field-user a").first.click()
    expect(admin.get_by_role("heading", name="View guest")).to_be_visible()
    expect(admin.get_by_role("button", name="Save")).to_have_count(0)  # read-only
    staff.close()
