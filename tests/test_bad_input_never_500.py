"""Every write endpoint answers junk with a 4xx that says what is wrong, never a 500."""

import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

pytestmark = pytest.mark.django_db

JUNK_JSON = [
    {},
    [],
    "text",
    {"kind": None},
    {"listing_id": {"a": 1}, "ad_rate": "lots"},
    {"batch": "not a list"},
    {"batch": [None, 5, "x"]},
    {"marketplace_id": 42, "parent_category_id": [1], "max_categories": -5},
    {"from_start": {"x": 1}},
]

JSON_ENDPOINTS = [
    "/api/jobs/",
    "/api/ebay/category-fetches",
    "/api/ebay/promotions",
    "/api/ebay/offers/123/publish",
    f"/api/jobs/{uuid.uuid4()}/retry",
    f"/api/ebay/category-fetches/{uuid.uuid4()}/retry-failed",
]

UPLOAD_ENDPOINTS = ["/api/imports/products", "/api/imports/dealers", "/api/analysis/"]


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
@pytest.mark.parametrize("body", JUNK_JSON, ids=range(len(JUNK_JSON)))
def test_json_junk_is_never_a_500(api, fake_ebay, path, body):
    response = api.post(path, body, format="json")
    assert response.status_code < 500, (path, body, response.status_code, response.content[:300])


def test_account_junk_is_never_a_500(api, fake_ebay):
    for body in JUNK_JSON:
        response = api.put("/api/ebay/account", body, format="json")
        assert response.status_code < 500, (body, response.status_code)


@pytest.mark.parametrize("path", UPLOAD_ENDPOINTS)
@pytest.mark.parametrize("payload", [
    {},
    {"file": "not a file", "revenue_csv": "text"},
    {"file": SimpleUploadedFile("x.xlsx", b"PK\x03\x04garbage"),
     "revenue_csv": SimpleUploadedFile("r.csv", b"\x00\xff\xfe binary")},
    {"file": SimpleUploadedFile("x.csv", b""), "revenue_csv": SimpleUploadedFile("r.csv", b""),
     "asin_or_url": "nope", "marketplace": "ZZ"},
], ids=range(4))
def test_upload_junk_is_a_4xx(api, path, payload):
    response = api.post(path, payload, format="multipart")
    assert 400 <= response.status_code < 500, (path, response.status_code, response.content[:300])


@pytest.mark.parametrize("path", [
    "/api/imports/999999", "/api/imports/999999/errors.csv", "/api/products/nope/",
    f"/api/analysis/{uuid.uuid4()}", f"/api/analysis/{uuid.uuid4()}/report.xlsx",
    f"/api/ebay/promotions/{uuid.uuid4()}", f"/api/ebay/category-fetches/{uuid.uuid4()}",
    "/api/ebay/categories/nope/aspects", "/api/products/?search=%00%27%22", "/api/jobs/?page=abc",
    "/api/ebay/promotions?status=zzz&listing_id=abc", "/api/imports/?type=zzz",
])
def test_unknown_or_odd_reads_are_a_4xx_or_200(api, fake_ebay, path):
    response = api.get(path)
    assert response.status_code < 500, (path, response.status_code, response.content[:300])
