"""The eBay client against the fake eBay server over HTTP: tokens, typed errors, spacing, and the requests
checked against eBay's own OpenAPI contracts."""

import json
import re
import socket
from pathlib import Path

import pytest
import yaml
from django.core.cache import cache

from ebay import crypto, services
from ebay.client import (
    APP_SCOPE,
    AuthError,
    CampaignNotFound,
    EbayClient,
    InvalidBid,
    ListingNotSynced,
    NotEligible,
    NotFound,
    NotLeafCategory,
    QuotaExceeded,
    Spacer,
    TransientError,
)
from ebay.models import EbayAccount

pytestmark = pytest.mark.django_db

SPECS = Path("/work/shared/ebay-specs")
TAXONOMY_SPEC = SPECS / "commerce_taxonomy_v1_oas3.v1.1.0.yaml"
MARKETING_SPEC = SPECS / "sell_marketing_v1_oas3.v1.22.2.json"


def _operations(spec, base_path):
    """(method, compiled path regex, operation) for every operation of an OpenAPI document."""
    found = []
    for template, methods in spec["paths"].items():
        pattern = re.escape(base_path + template)
        pattern = re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", pattern)
        for method, operation in methods.items():
            if method in {"get", "post", "put", "delete", "patch"}:
                found.append((method.upper(), re.compile(f"^{pattern}$"), operation))
    return found


def _check_against(spec, base_path, request):
    matches = [op for method, regex, op in _operations(spec, base_path)
               if method == request["method"] and regex.match(request["path"])]
    # Literal paths (get_default_category_tree_id) beat templated ones (category_tree/{id}).
    assert matches, f"{request['method']} {request['path']} is not an operation of the contract"
    operation = min(matches, key=lambda op: len(op.get("parameters", [])))
    declared = {p["name"]: p for p in operation.get("parameters", [])}
    query_declared = {n for n, p in declared.items() if p["in"] == "query"}
    for name in request["query"]:
        assert name in query_declared, f"{operation['operationId']}: undeclared query parameter {name!r}"
    for name, parameter in declared.items():
        if parameter.get("required") and parameter["in"] == "query":
            assert request["query"].get(name), f"{operation['operationId']}: required {name!r} missing"
        if parameter.get("required") and parameter["in"] == "header":
            assert name.lower() in {h.lower() for h in request["headers"]}, \
                f"{operation['operationId']}: required header {name!r} missing"
    assert request["headers"].get("Authorization", "").startswith("Bearer "), "no bearer token"
    return operation["operationId"]


def test_taxonomy_requests_match_the_taxonomy_contract(fake_ebay):
    spec = yaml.safe_load(TAXONOMY_SPEC.read_text())
    base_path = spec["servers"][0]["variables"]["basePath"]["default"]
    with EbayClient() as client:
        tree = client.get_default_category_tree_id("EBAY_US")
        client.get_category_tree(tree["categoryTreeId"])
        subtree = client.get_category_subtree(tree["categoryTreeId"], "26395")
        leaf = services.collect_leaves(subtree["categorySubtreeNode"])[0][0]
        client.get_item_aspects_for_category(tree["categoryTreeId"], leaf)

    taxonomy_requests = fake_ebay.state.requests_to("/commerce/taxonomy/")
    operations = [_check_against(spec, base_path, request) for request in taxonomy_requests]
    assert operations == ["getDefaultCategoryTreeId", "getCategoryTree", "getCategorySubtree",
                          "getItemAspectsForCategory"]
    # The application token: client-credentials grant, Basic client auth, the public scope only.
    (token_request,) = fake_ebay.state.requests_to("/identity/v1/oauth2/token")
    assert token_request["method"] == "POST"
    assert token_request["headers"]["Authorization"].startswith("Basic ")
    assert token_request["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert "grant_type=client_credentials" in token_request["body"]
    assert "scope=https%3A%2F%2Fapi.ebay.com%2Foauth%2Fapi_scope" in token_request["body"]
    spec_scopes = spec["components"]["securitySchemes"]["api_auth"]["flows"]["clientCredentials"]["scopes"]
    assert APP_SCOPE in spec_scopes


def test_marketing_requests_match_the_marketing_contract(fake_ebay, user):
    spec = json.loads(MARKETING_SPEC.read_text())
    base_path = spec["servers"][0]["variables"]["basePath"]["default"]
    with services.user_client(user) as client:
        campaigns = client.get_campaigns(campaign_status="RUNNING")["campaigns"]
        ad_id = client.create_ad_by_listing_id(campaigns[0]["campaignId"], "177681098666", "5.0")
        ads = client.get_ads(campaigns[0]["campaignId"], listing_ids=["177681098666"])["ads"]
    assert ad_id and ads[0]["adId"] == ad_id and ads[0]["bidPercentage"] == "5.0"

    requests = fake_ebay.state.requests_to("/sell/marketing/")
    assert [_check_against(spec, base_path, r) for r in requests] == ["getCampaigns", "createAdByListingId",
                                                                       "getAds"]
    create = requests[1]
    body_schema = spec["components"]["schemas"]["CreateAdRequest"]["properties"]
    body = json.loads(create["body"])
    assert set(body) <= set(body_schema) and body == {"listingId": "177681098666", "bidPercentage": "5.0"}
    assert create["headers"]["Content-Type"] == "application/json"
    assert create["headers"]["X-EBAY-C-MARKETPLACE-ID"] == "EBAY_US"


def test_the_application_token_is_cached_across_clients(fake_ebay):
    for _ in range(3):
        with EbayClient() as client:
            client.get_default_category_tree_id()
    assert fake_ebay.state.token_grants["client_credentials"] == 1
    # Other processes read it from Django's (shared) cache.
    assert any(key for key in [EbayClient()._app_token_cache_key()] if cache.get(key))


def test_an_expired_app_token_is_replaced_once_on_401(fake_ebay):
    with EbayClient() as client:
        client.get_default_category_tree_id()
        fake_ebay.state.configure(expire_tokens=True)
        assert client.get_default_category_tree_id()["categoryTreeId"] == "0"
    assert fake_ebay.state.token_grants["client_credentials"] == 2
    statuses = [r["path"] for r in fake_ebay.state.requests]
    assert statuses.count("/commerce/taxonomy/v1/get_default_category_tree_id") == 3  # ok, 401, ok


def test_errors_are_typed_by_error_id_and_status(fake_ebay):
    fake_ebay.state.configure(not_found_categories=["178320"])
    with EbayClient() as client:
        with pytest.raises(NotFound) as missing:
            client.get_item_aspects_for_category("0", "178320")
        assert missing.value.status == 404 and missing.value.describe().startswith("HTTP 404")
        with pytest.raises(NotLeafCategory) as not_leaf:
            client.get_item_aspects_for_category("0", "26395")
        assert not_leaf.value.error_id == 62009 and not not_leaf.value.transient
        fake_ebay.state.configure(error_500_next=1)
        with pytest.raises(TransientError) as internal:
            client.get_default_category_tree_id()
        assert internal.value.status == 500 and internal.value.transient
        fake_ebay.state.configure(quota_limit=0, quota_window_seconds=120)
        with pytest.raises(QuotaExceeded) as quota:
            client.get_default_category_tree_id()
        assert quota.value.error_id == 2001 and 110 <= quota.value.retry_after <= 120


def test_marketing_error_ids(fake_ebay, user):
    fake_ebay.state.configure(sync_delay_calls={"1001": 1}, not_eligible_listings=["1002"])
    with services.user_client(user) as client:
        with pytest.raises(ListingNotSynced) as sync:
            client.create_ad_by_listing_id("151310691012", "1001", "5.0")
        assert sync.value.error_id == 35048 and sync.value.transient
        with pytest.raises(NotEligible):
            client.create_ad_by_listing_id("151310691012", "1002", "5.0")
        with pytest.raises(CampaignNotFound) as campaign:
            client.create_ad_by_listing_id("999", "1001", "5.0")
        assert campaign.value.error_id == 35045
        with pytest.raises(InvalidBid):
            client.create_ad_by_listing_id("151310691012", "1001", "1.0")


def test_network_failures_are_transient(settings):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    settings.EBAY_ENV = "fake"
    with EbayClient(base_url=f"http://127.0.0.1:{port}", timeout=2) as client:
        with pytest.raises(TransientError) as unreachable:
            client.get_default_category_tree_id()
    assert "could not reach eBay" in str(unreachable.value)


def test_missing_credentials_outside_the_fake_are_an_auth_error(settings, fake_ebay):
    settings.EBAY_ENV = "production"
    settings.EBAY_CLIENT_ID = ""
    with EbayClient() as client, pytest.raises(AuthError) as missing:
        client.get_default_category_tree_id()
    assert "EBAY_CLIENT_ID" in str(missing.value)


def test_the_spacer_keeps_calls_apart():
    now = [100.0]
    slept = []

    def sleep(seconds):
        slept.append(round(seconds, 3))
        now[0] += seconds

    spacer = Spacer(0.2, clock=lambda: now[0], sleep=sleep)
    spacer.wait()
    spacer.wait()
    now[0] += 0.05
    spacer.wait()
    now[0] += 1
    spacer.wait()
    assert slept == [0.2, 0.15]


def test_calls_of_one_client_are_spaced_over_http(fake_ebay):
    with EbayClient(spacer=Spacer(0.1)) as client:
        for _ in range(4):
            client.get_item_aspects_for_category("0", "178320")
    times = [r["at"] for r in fake_ebay.state.requests_to("get_item_aspects_for_category")]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert len(gaps) == 3 and min(gaps) >= 0.095


def test_user_tokens_are_encrypted_at_rest_and_bound_to_their_row(user, other_user, settings):
    settings.EBAY_ENV = "fake"
    services.connect_account(user, "v^1.1#i^1#refresh-token-of-seller")
    account = EbayAccount.objects.get(user=user)
    assert "refresh-token-of-seller" not in account.refresh_token_encrypted
    assert account.refresh_token_encrypted.startswith("v1:")
    assert crypto.decrypt(account.refresh_token_encrypted, f"ebay-account:{user.pk}:refresh") == \
        "v^1.1#i^1#refresh-token-of-seller"
    # Copied into another user's context, or decrypted with another key, it does not open.
    with pytest.raises(crypto.TokenDecryptError):
        crypto.decrypt(account.refresh_token_encrypted, f"ebay-account:{other_user.pk}:refresh")
    settings.EBAY_TOKEN_KEY = "A" * 43
    with pytest.raises(crypto.TokenDecryptError):
        crypto.decrypt(account.refresh_token_encrypted, f"ebay-account:{user.pk}:refresh")


def test_a_bad_token_key_is_a_configuration_error(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.EBAY_TOKEN_KEY = "too-short"
    with pytest.raises(ImproperlyConfigured):
        crypto.encrypt("x", "ctx")


def test_user_access_tokens_are_reused_until_they_near_expiry(fake_ebay, user):
    for _ in range(3):
        with services.user_client(user) as client:
            client.get_campaigns()
    assert fake_ebay.state.token_grants["refresh_token"] == 1
    account = EbayAccount.objects.get(user=user)
    assert account.access_token_encrypted.startswith("v1:") and "fake-user" not in account.access_token_encrypted


def test_a_401_on_a_user_call_refreshes_the_token_once(fake_ebay, user):
    with services.user_client(user) as client:
        client.get_campaigns()
        fake_ebay.state.configure(reject_user_tokens=1)
        assert client.get_campaigns()["campaigns"]
    assert fake_ebay.state.token_grants["refresh_token"] == 2


def test_a_revoked_refresh_token_is_an_auth_error(fake_ebay, user):
    services.connect_account(user, "revoked-token")
    with services.user_client(user) as client, pytest.raises(AuthError) as refused:
        client.get_campaigns()
    assert "invalid_grant" in str(refused.value)


def test_fake_ebay_command_serves_over_http_with_faults_set_by_flags_and_the_control_endpoint(tmp_path, settings):
    import sys

    import httpx

    from tests.support import Process, wait_until

    settings.EBAY_ENV, settings.EBAY_CLIENT_ID = "fake", ""
    process = Process([sys.executable, "manage.py", "fake_ebay", "--port", "0", "--not-found", "178320",
                       "--sync-delay", "0"], tmp_path / "fake.log")
    try:
        line = wait_until(lambda: re.search(r"http://127\.0\.0\.1:\d+", process.output()), timeout=30,
                          message="the fake eBay server to start")
        url = line.group(0)
        with EbayClient(base_url=url) as client:
            assert client.get_default_category_tree_id()["categoryTreeId"] == "0"
            with pytest.raises(NotFound):
                client.get_item_aspects_for_category("0", "178320")
            assert httpx.post(f"{url}/__fake__/faults", json={"quota_limit": 0}).status_code == 200
            with pytest.raises(QuotaExceeded):
                client.get_default_category_tree_id()
            assert httpx.post(f"{url}/__fake__/faults", json={"no_such_fault": 1}).status_code == 400
        state = httpx.get(f"{url}/__fake__/state").json()
        assert state["token_grants"]["client_credentials"] == 1 and state["quota_limit"] == 0
    finally:
        process.kill()
