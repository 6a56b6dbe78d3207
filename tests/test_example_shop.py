"""The example shop: a guest shops, the banner shows, checkout needs an account."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client, override_settings

from anonauth import link
from anonauth.exceptions import EmailInUse
from anonauth.guests import create_guest, is_guest
from anonauth.models import Guest
from anonauth.test import BROWSER_USER_AGENT, make_registered_user
from example_project.shop.models import Cart, CartItem, Order, Product

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
STRICT_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
]


@pytest.fixture
def mug() -> Product:
    return Product.objects.create(name="Mug", price=Decimal("8.00"))


def test_a_visitor_browses_without_becoming_a_guest(browser: Client, mug: Product) -> None:
    page = browser.get("/").content.decode()
    assert "Mug" in page
    assert "shopping as a guest" not in page
    assert not Guest.objects.exists()


def test_add_to_cart_makes_a_guest_with_a_cart(browser: Client, mug: Product) -> None:
    response = browser.post(f"/cart/add/{mug.pk}/", follow=True)
    page = response.content.decode()
    assert "You are shopping as a guest" in page
    assert "1 \N{MULTIPLICATION SIGN} Mug" in page
    browser.post(f"/cart/add/{mug.pk}/")
    cart = Cart.objects.get(owner=Guest.objects.get().user)
    assert cart.items.get().quantity == 2


def test_a_refused_visitor_is_told_why(mug: Product) -> None:
    response = Client(HTTP_USER_AGENT="curl/8").post(f"/cart/add/{mug.pk}/", follow=True)
    assert "Please enable cookies" in response.content.decode()
    assert not Cart.objects.exists()


@override_settings(ANONAUTH_LIVE_GUEST_CAP=1)
def test_the_live_guest_cap_is_explained(mug: Product) -> None:
    def add(address: str) -> str:
        client = Client(HTTP_USER_AGENT=BROWSER_USER_AGENT, REMOTE_ADDR=address)
        client.cookies["probe"] = "1"
        return client.post(f"/cart/add/{mug.pk}/", follow=True).content.decode()

    assert "shopping as a guest" in add("198.51.100.1")
    assert "Too many guests are active from this network." in add("198.51.100.2")
    assert Guest.objects.count() == 1


def test_guests_cannot_check_out(browser: Client, mug: Product) -> None:
    browser.post(f"/cart/add/{mug.pk}/")
    response = browser.post("/checkout/")
    assert response.status_code == 302
    # Back to the cart after logging in: not to the POST-only checkout (a 405 on GET).
    assert response["Location"] == "/accounts/login/?next=%2Fcart%2F"
    assert not Order.objects.exists()


def test_a_guest_at_checkout_is_told_why_and_offered_both_ways(
    browser: Client, mug: Product
) -> None:
    browser.post(f"/cart/add/{mug.pk}/")
    response = browser.post("/checkout/", follow=True)
    page = response.content.decode()
    assert response.status_code == 200
    assert response.redirect_chain[-1][0].startswith("/accounts/login/")
    assert "Create an account or log in to check out" in page
    assert 'name="next" value="/cart/"' in page  # the login form goes back to the cart
    assert 'id="signup-link" href="/account/upgrade/"' in page  # or create an account


def test_a_guest_logs_in_at_checkout_and_comes_back_to_the_cart(
    browser: Client, member: Any, mug: Product
) -> None:
    browser.post(f"/cart/add/{mug.pk}/")
    login_url = browser.post("/checkout/")["Location"]
    assert browser.get(login_url).status_code == 200
    response = browser.post(
        login_url,
        {"username": member.get_username(), "password": "correct-horse-42", "next": "/cart/"},
        follow=True,
    )
    assert response.redirect_chain == [("/cart/", 302)]
    assert response.status_code == 200
    assert "1 \N{MULTIPLICATION SIGN} Mug" in response.content.decode()  # the guest's cart
    placed = browser.post("/checkout/", follow=True)
    assert "placed" in placed.content.decode()
    assert Order.objects.get(customer=member).total == Decimal("8.00")


@pytest.mark.auth_user_only  # the shop's upgrade makes the email the username
def test_a_guest_creates_an_account_at_checkout_and_comes_back_to_the_cart(
    browser: Client, mug: Product
) -> None:
    browser.post(f"/cart/add/{mug.pk}/")
    browser.post("/checkout/", follow=True)
    response = browser.post(
        "/account/upgrade/", {"email": "ada@example.com", "password": PASSWORD}, follow=True
    )
    assert response.redirect_chain == [("/cart/", 302)]
    assert "1 \N{MULTIPLICATION SIGN} Mug" in response.content.decode()
    assert "placed" in browser.post("/checkout/", follow=True).content.decode()
    assert Order.objects.get().customer.get_username() == "ada@example.com"


def test_checkout_by_get_goes_to_the_cart_not_a_405(browser: Client, member: Any) -> None:
    assert browser.get("/checkout/")["Location"] == "/cart/"
    browser.force_login(member)
    assert browser.get("/checkout/")["Location"] == "/cart/"
    assert not Order.objects.exists()


def test_members_check_out(member: Any, mug: Product) -> None:
    client = Client()
    client.force_login(member)
    client.post(f"/cart/add/{mug.pk}/")
    client.post(f"/cart/add/{mug.pk}/")
    response = client.post("/checkout/", follow=True)
    assert "placed" in response.content.decode()
    assert Order.objects.get(customer=member).total == Decimal("16.00")


@pytest.mark.auth_user_only
def test_seed_demo_is_idempotent(capsys: Any) -> None:
    call_command("seed_demo")
    call_command("seed_demo")
    assert Product.objects.count() == 4
    customer_cart = Cart.objects.get(owner__username="customer")
    assert [str(item) for item in customer_cart.items.all()] == ["1 x Coffee beans"]
    out = capsys.readouterr().out
    assert "Staff account: admin /" in out
    assert "Customer account: customer /" in out


# The shop's guest_linking receiver (merge_carts), moved here from test_link.py


def test_the_shops_receiver_merges_carts(member: Any) -> None:
    """The pattern from the README: sum two carts before the automatic move."""
    guest = create_guest()
    mug, pen = (
        Product.objects.create(name="Mug", price=8),
        Product.objects.create(name="Pen", price=1),
    )
    guest_cart, member_cart = (
        Cart.objects.create(owner=guest),
        Cart.objects.create(owner=member),
    )
    CartItem.objects.create(cart=guest_cart, product=mug, quantity=2)
    CartItem.objects.create(cart=guest_cart, product=pen, quantity=1)
    CartItem.objects.create(cart=member_cart, product=mug, quantity=1)
    link.link_guest(guest, member)  # the shop connects its merge_carts receiver
    items = dict(Cart.objects.get(owner=member).items.values_list("product__name", "quantity"))
    assert items == {"Mug": 3, "Pen": 1}
    assert Cart.objects.count() == 1


def test_two_guests_of_one_person_both_end_up_in_the_account(member: Any) -> None:
    mug = Product.objects.create(name="Mug", price=8)
    pen = Product.objects.create(name="Pen", price=1)
    for product in (mug, pen):  # two devices, one after the other
        device = Client(HTTP_USER_AGENT=BROWSER_USER_AGENT)
        device.cookies["seen"] = "1"
        device.post(f"/cart/add/{product.pk}/")
        device.post(
            "/accounts/login/",
            {"username": member.get_username(), "password": "correct-horse-42"},
        )
    items = dict(Cart.objects.get(owner=member).items.values_list("product__name", "quantity"))
    assert items == {"Mug": 1, "Pen": 1}
    assert not Guest.objects.exists()


# Upgrade in place in the shop: the banner, the upgrade form, then checkout (moved here
# from test_upgrade.py)

EXAMPLE_TEMPLATES = [
    {**settings.TEMPLATES[0], "DIRS": [Path(__file__).parent.parent / "example_project/templates"]}
]


@pytest.mark.auth_user_only  # the example project uses auth.User, logging in by username
@override_settings(ROOT_URLCONF="example_project.urls", TEMPLATES=EXAMPLE_TEMPLATES)
def test_example_shop_upgrade_keeps_the_cart_and_opens_checkout(browser: Client) -> None:
    product = Product.objects.create(name="Teapot", price=Decimal("12.50"))
    browser.post(f"/cart/add/{product.pk}/")  # a guest, with a cart
    cart_page = browser.get("/cart/")
    assert "create an account to keep your cart" in cart_page.content.decode()
    assert browser.post("/checkout/")["Location"].startswith("/accounts/login/")
    guest_id = int(browser.session["_auth_user_id"])
    assert browser.get("/account/upgrade/").status_code == 200

    response = browser.post("/account/upgrade/", {"email": "ada@example.com", "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == "/cart/"
    cart_page = browser.get("/cart/")
    assert "1 \u00d7 Teapot" in cart_page.content.decode()
    assert "guest-banner" not in cart_page.content.decode()
    assert browser.post("/checkout/").status_code == 302
    order = Order.objects.get()
    assert order.customer_id == guest_id
    assert order.total == Decimal("12.50")
    browser.post("/accounts/logout/")
    login = browser.post("/accounts/login/", {"username": "ada@example.com", "password": PASSWORD})
    assert login.status_code == 302
    assert int(browser.session["_auth_user_id"]) == guest_id


@pytest.mark.auth_user_only  # the example project uses auth.User
@override_settings(
    ROOT_URLCONF="example_project.urls",
    TEMPLATES=EXAMPLE_TEMPLATES,
    AUTH_PASSWORD_VALIDATORS=STRICT_VALIDATORS,
)
def test_example_shop_upgrade_form_shows_errors(browser: Client) -> None:
    make_registered_user("taken@example.com")
    product = Product.objects.create(name="Teapot", price=Decimal("12.50"))
    browser.post(f"/cart/add/{product.pk}/")

    taken = browser.post("/account/upgrade/", {"email": "taken@example.com", "password": PASSWORD})
    weak = browser.post("/account/upgrade/", {"email": "ada@example.com", "password": "1234"})

    assert taken.status_code == 200
    assert taken.context["form"].errors["email"] == [EmailInUse().message]
    assert weak.status_code == 200
    assert len(weak.context["form"].errors["password"]) == 2
    assert is_guest(get_user_model().objects.get(pk=browser.session["_auth_user_id"]))


@override_settings(
    ROOT_URLCONF="example_project.urls", TEMPLATES=EXAMPLE_TEMPLATES, LOGOUT_REDIRECT_URL="/"
)
def test_the_demo_says_when_you_are_signed_out(client: Client, member: Any) -> None:
    client.force_login(member)
    response = client.post("/accounts/logout/", follow=True)
    assert response.redirect_chain == [("/", 302)]
    assert "You are signed out." in response.content.decode()
    assert "_auth_user_id" not in client.session


@override_settings(ROOT_URLCONF="example_project.urls", TEMPLATES=EXAMPLE_TEMPLATES)
def test_example_upgrade_page_sends_others_away(client: Client) -> None:
    assert client.get("/account/upgrade/")["Location"] == "/"
    client.force_login(make_registered_user("ada@example.com"))
    assert client.get("/account/upgrade/")["Location"] == "/cart/"


# The mixins in the shop: "Your guest account" (GuestRequiredMixin) and "Your orders"
# (RegisteredUserRequiredMixin).


@pytest.fixture
def _shop() -> Any:
    with override_settings(ROOT_URLCONF="example_project.urls", TEMPLATES=EXAMPLE_TEMPLATES):
        yield


@pytest.mark.usefixtures("_shop")
class TestShopMixins:
    def test_guest_account_page_makes_a_visitor_a_guest(
        self, browser: Client, mug: Product
    ) -> None:
        browser.post(f"/cart/add/{mug.pk}/")
        page = browser.get("/account/guest/").content.decode()
        assert "Your guest account" in page
        assert "1 item in" in page
        assert Guest.objects.count() == 1
        assert 'id="guest-account-link" href="/account/guest/"' in browser.get("/").content.decode()
        fresh = Client(HTTP_USER_AGENT=BROWSER_USER_AGENT)
        fresh.cookies["seen"] = "1"
        assert "0 items in" in fresh.get("/account/guest/").content.decode()
        assert Guest.objects.count() == 2

    def test_guest_account_page_sends_members_away(self, client: Client, member: Any) -> None:
        client.force_login(member)
        assert client.get("/account/guest/")["Location"] == settings.LOGIN_REDIRECT_URL

    def test_guest_account_page_refuses_a_cookieless_client(self, client: Client) -> None:
        assert client.get("/account/guest/").status_code == 403
        assert not Guest.objects.exists()

    def test_orders_are_for_members(self, client: Client, member: Any) -> None:
        Order.objects.create(customer=member, total=Decimal("12.50"))
        client.force_login(member)
        page = client.get("/orders/").content.decode()
        assert "12.50" in page
        assert 'id="orders-link"' in page

    def test_orders_send_a_guest_to_log_in_and_back(self, browser: Client, mug: Product) -> None:
        browser.post(f"/cart/add/{mug.pk}/")
        response = browser.get("/orders/")
        assert response.status_code == 302
        assert response["Location"] == "/accounts/login/?next=%2Forders%2F"


# The examples of docs/testing.md (and the README's "Testing your own views"), run here
# against the shop so that they keep working.


def test_docs_a_plain_test_client_gets_no_guest(client: Client, mug: Product) -> None:
    response = client.post(f"/cart/add/{mug.pk}/")  # Django's client sends no User-Agent
    assert response.wsgi_request.anonauth.refusal_code == "user_agent_refused"
    assert not Guest.objects.exists()


def test_docs_a_guest_adds_to_the_cart(mug: Product) -> None:
    from django.contrib.auth import SESSION_KEY

    from anonauth.test import guest_client

    client = guest_client()  # a browser's User-Agent and cookie, signed in as a guest
    client.post(f"/cart/add/{mug.pk}/")
    guest = get_user_model().objects.get(pk=client.session[SESSION_KEY])
    assert is_guest(guest)
    assert Cart.objects.get(owner=guest).items.get().product == mug


def test_docs_guests_are_turned_away_from_checkout(client: Client) -> None:
    from anonauth.test import make_guest

    client.force_login(make_guest())
    assert client.post("/checkout/")["Location"] == "/accounts/login/?next=%2Fcart%2F"


def test_docs_logging_in_links_the_guest(
    mug: Product, django_capture_on_commit_callbacks: Any
) -> None:
    from anonauth.signals import guest_linked
    from anonauth.test import capture_signal, guest_client

    client = guest_client()
    client.post(f"/cart/add/{mug.pk}/")
    ada = make_registered_user("ada@example.com")  # username "ada", password "correct-horse-42"
    # capture_signal outermost: the callbacks run as the inner block ends, still heard.
    with (
        capture_signal(guest_linked) as calls,
        django_capture_on_commit_callbacks(execute=True),
    ):
        client.post(
            "/accounts/login/", {"username": ada.get_username(), "password": "correct-horse-42"}
        )
    assert [call["user"] for call in calls] == [ada]
    assert Cart.objects.get(owner=ada).items.get().product == mug


def test_docs_a_broken_receiver_rolls_the_link_back(member: Any) -> None:
    from anonauth.signals import guest_linking
    from anonauth.test import connected, make_guest

    guest = make_guest()

    def broken(**kwargs: Any) -> None:
        raise RuntimeError("receiver bug")

    with connected(guest_linking, broken), pytest.raises(RuntimeError):
        link.link_guest(guest, member)
    assert is_guest(guest)  # still a guest: nothing was moved


@override_settings(
    ROOT_URLCONF="example_project.urls",
    TEMPLATES=EXAMPLE_TEMPLATES,
    ANONAUTH_TRANSFER_RATE_LIMIT="1/h",
)
def test_example_shop_continues_on_another_device(browser: Client) -> None:
    product = Product.objects.create(name="Teapot", price=Decimal("12.50"))
    browser.post(f"/cart/add/{product.pk}/")  # a guest on the phone, with a cart
    page = browser.get("/transfer/").content.decode()
    assert 'id="transfer-issue-form"' in page
    assert 'id="transfer-enter-form"' in page
    shown = browser.post("/transfer/").content.decode()
    code = shown.split('class="anonauth-transfer-code">')[1].split("<")[0]
    assert "<svg" in shown  # the QR code (segno is in the test extra)

    laptop = Client(HTTP_USER_AGENT=BROWSER_USER_AGENT)
    response = laptop.post("/auth/anonymous/transfer/enter/", {"code": code})

    assert response.status_code == 302
    assert "1 \u00d7 Teapot" in laptop.get("/cart/").content.decode()
    assert "1 \u00d7 Teapot" in browser.get("/cart/").content.decode()  # still signed in
    again = browser.post("/transfer/").content.decode()  # over the limit
    assert "Too many transfer code requests" in again
    assert "anonauth-transfer-code" not in again


def test_example_shop_download_my_data(browser: Client, mug: Product) -> None:
    """The guest banner's "Download my data" link: the guest's export, its cart with the
    items (example_project/settings.py's ANONAUTH_EXPORT_SERIALIZERS)."""
    from example_project import settings as example_settings

    page = browser.post(f"/cart/add/{mug.pk}/", follow=True).content.decode()
    assert 'id="export-link" href="/auth/anonymous/export/">Download my data</a>' in page
    serializers = example_settings.ANONAUTH_EXPORT_SERIALIZERS
    with override_settings(ANONAUTH_EXPORT_SERIALIZERS=serializers):
        response = browser.get("/auth/anonymous/export/")
    assert response["Content-Disposition"].startswith("attachment")
    export = json.loads(b"".join(response.streaming_content))
    [cart] = export["relations"]["shop.Cart.owner"]
    assert cart["items"] == [{"product": "Mug", "price": "8.00", "quantity": 1}]
    assert export["guest"] is not None


def test_example_shop_members_download_their_data_too(member: Any) -> None:
    client = Client(HTTP_USER_AGENT=BROWSER_USER_AGENT)
    client.force_login(member)
    assert 'id="export-link"' in client.get("/").content.decode()
    export = json.loads(b"".join(client.get("/auth/anonymous/export/").streaming_content))
    assert export["guest"] is None


@override_settings(ROOT_URLCONF="example_project.urls", ANONAUTH_METRICS=True)
def test_the_shop_serves_its_metrics(browser: Client, mug: Product) -> None:
    browser.post(f"/cart/add/{mug.pk}/")
    text = Client().get("/metrics").content.decode()
    assert "anonauth_live_guests 1.0" in text
    assert "# TYPE anonauth_refusals_total counter" in text


def test_the_shop_logs_anonauth_events_and_turns_metrics_on() -> None:
    import example_project.settings as shop

    assert shop.ANONAUTH_METRICS == "auto"
    assert {"anonauth", "anonauth.gates", "anonauth.purge"} <= set(shop.LOGGING["loggers"])


# The campaign a visitor came with: the guest's metadata, shown, carried to the account

SHOP_HOOK = "example_project.shop.policy.before_create"


@override_settings(ANONAUTH_BEFORE_CREATE=SHOP_HOOK)
def test_the_campaign_a_visitor_came_with_is_kept_and_shown(browser: Client, mug: Product) -> None:
    landing = browser.get("/?utm_campaign=spring").content.decode()
    assert 'id="campaign"' not in landing  # not a guest yet
    assert not Guest.objects.exists()
    browser.post(f"/cart/add/{mug.pk}/")
    assert Guest.objects.get().metadata == {"utm_campaign": "spring"}
    page = browser.get("/").content.decode()
    assert "You came with the <em>spring</em> campaign." in page


@override_settings(ANONAUTH_BEFORE_CREATE=SHOP_HOOK)
def test_a_visitor_without_a_campaign_gets_empty_metadata(browser: Client, mug: Product) -> None:
    browser.post(f"/cart/add/{mug.pk}/")
    assert Guest.objects.get().metadata == {}
    assert 'id="campaign"' not in browser.get("/").content.decode()


@pytest.mark.auth_user_only  # the example project uses auth.User
@pytest.mark.django_db(transaction=True)  # the receiver runs after a real commit
@override_settings(
    ANONAUTH_BEFORE_CREATE=SHOP_HOOK,
    ROOT_URLCONF="example_project.urls",
    TEMPLATES=EXAMPLE_TEMPLATES,
)
def test_the_campaign_is_carried_to_the_account_on_link(
    browser: Client, mug: Product, caplog: pytest.LogCaptureFixture
) -> None:
    member = make_registered_user()
    browser.get("/?utm_campaign=spring")
    browser.post(f"/cart/add/{mug.pk}/")
    credentials = {"username": member.get_username(), "password": "correct-horse-42"}
    with caplog.at_level("INFO", logger="example_project.shop"):
        response = browser.post("/accounts/login/", {**credentials, "next": "/cart/"}, follow=True)
    assert f"shop: user {member.pk} came with the 'spring' campaign" in caplog.text
    assert "You came with the “spring” campaign." in response.content.decode()


@pytest.mark.auth_user_only  # the shop's upgrade makes the email the username
@override_settings(ANONAUTH_BEFORE_CREATE=SHOP_HOOK)
def test_the_campaign_is_carried_to_the_account_on_upgrade(
    browser: Client,
    mug: Product,
    caplog: pytest.LogCaptureFixture,
    django_capture_on_commit_callbacks: Any,
) -> None:
    browser.get("/?utm_campaign=spring")
    browser.post(f"/cart/add/{mug.pk}/")
    guest_id = Guest.objects.get().pk
    with (
        caplog.at_level("INFO", logger="example_project.shop"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        browser.post("/account/upgrade/", {"email": "ada@example.com", "password": PASSWORD})
    assert f"shop: user {guest_id} came with the 'spring' campaign" in caplog.text
