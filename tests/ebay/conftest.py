import pytest
from django.core.cache import cache

from ebay.fake_server import FakeEbayServer


@pytest.fixture
def fake_ebay(settings):
    """The fake eBay server on a thread, over real HTTP on an ephemeral loopback port; the app points at it."""
    server = FakeEbayServer(host="127.0.0.1", port=0).start()
    settings.EBAY_ENV = "fake"
    settings.EBAY_CLIENT_ID = ""
    settings.EBAY_API_BASE_URL = server.url
    settings.EBAY_CALL_SPACING_SECONDS = 0
    settings.EBAY_TOKEN_KEY = ""
    cache.clear()
    yield server
    server.stop()
    cache.clear()
