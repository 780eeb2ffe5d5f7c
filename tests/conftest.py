import pytest
from rest_framework.test import APIClient

from tests.support import start_qcluster


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("seller", password="pw-seller-123")


@pytest.fixture
def other_user(django_user_model):
    return django_user_model.objects.create_user("other", password="pw-other-123")


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_user("boss", password="pw-boss-123", is_staff=True,
                                                 is_superuser=True)


def _client_for(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def api(user):
    return _client_for(user)


@pytest.fixture
def other_api(other_user):
    return _client_for(other_user)


@pytest.fixture
def staff_api(staff_user):
    return _client_for(staff_user)


@pytest.fixture
def qcluster(transactional_db, tmp_path):
    """A real qcluster process on the test database; killed at the end of the test."""
    started = []

    def start(**env):
        process = start_qcluster(tmp_path, name=f"qcluster-{len(started)}", **env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # The default hasher costs ~0.3 s a user; these tests check behaviour, not hashing.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def fake_ebay(settings):
    """The fake eBay server on a thread of this process, over real HTTP on an ephemeral loopback port. The app
    in this process points at it; `fake_ebay.env` points a web server or qcluster subprocess at it."""
    from django.core.cache import cache

    from ebay.fake_server import FakeEbayServer

    server = FakeEbayServer(host="127.0.0.1", port=0).start()
    settings.EBAY_ENV = "fake"
    settings.EBAY_CLIENT_ID = ""
    settings.EBAY_API_BASE_URL = server.url
    settings.EBAY_CALL_SPACING_SECONDS = 0
    settings.EBAY_TOKEN_KEY = ""
    server.env = {"EBAY_ENV": "fake", "EBAY_CLIENT_ID": "", "EBAY_API_BASE_URL": server.url,
                  "EBAY_CALL_SPACING_SECONDS": 0}
    cache.clear()  # no application token cached for another server
    yield server
    server.stop()
    cache.clear()
