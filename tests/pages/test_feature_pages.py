"""The feature apps' start pages and what their jobs add to the job page, through Django's test client.
The jobs run in this process (runner.run_job), as a worker would run them."""

import re
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from queueapp import dispatcher, runner
from queueapp.models import Job, JobStatus

pytestmark = pytest.mark.django_db

PRODUCTS_CSV = (
    "Code,Name,Brand,Category,Description,Price,Stock,Barcode\n"
    "SKU-1,Drill,Acme,Tools,A drill,19.99,5,\n"
    "SKU-2,Saw,Acme,Tools,A saw,not-a-price,3,\n"
    "SKU-3,Hammer,Acme,Tools,A hammer,7.50,10,\n"
)


def run_to_end(job_id, max_runs=200):
    for _ in range(max_runs):
        job = Job.objects.get(id=job_id)
        if not job.is_active:
            return job
        if job.status == JobStatus.WAITING:
            Job.objects.filter(id=job_id).update(run_after=timezone.now() - timedelta(seconds=1))
            dispatcher.wake_waiting()
        runner.run_job(job_id)
    raise AssertionError("the job did not finish")


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


@pytest.mark.parametrize("path", ["/start/import/", "/start/category-fetch/", "/start/promotions/",
                                  "/start/analysis/"])
def test_start_pages_require_login(client, path):
    response = client.get(path)
    assert response.status_code == 302 and response["Location"] == f"/login/?next={path}"


def test_import_page_posts_the_file_to_the_imports_api_with_its_size_limit(logged_in, settings):
    html = logged_in.get("/start/import/").content.decode()
    assert 'data-api="/api/imports/products"' in html and 'data-encoding="multipart"' in html
    assert '<label for="import-file">' in html and 'name="file"' in html
    assert f'data-max-bytes="{settings.IMPORTS_MAX_UPLOAD_BYTES}"' in html
    assert "<code>price</code>" in html and "quantity" in html  # the columns and their aliases


def test_category_fetch_page_has_the_seed_fields(logged_in):
    html = logged_in.get("/start/category-fetch/").content.decode()
    assert 'data-api="/api/ebay/category-fetches"' in html
    for name, label in [("marketplace_id", "Marketplace"), ("parent_category_id", "Parent category id"),
                        ("max_categories", "Max categories")]:
        assert f'name="{name}"' in html and f">{label}" in html
    assert '<option value="EBAY_US" selected>' in html


def test_analysis_page_has_the_seed_fields(logged_in, settings):
    html = logged_in.get("/start/analysis/").content.decode()
    assert 'data-api="/api/analysis/"' in html and 'data-encoding="multipart"' in html
    for name in ("asin_or_url", "marketplace", "revenue_csv", "design_csv"):
        assert f'name="{name}"' in html
    assert f'data-max-bytes="{settings.ANALYSIS_MAX_UPLOAD_MB * 1024 * 1024}"' in html
    assert '<option value="DE">DE (amazon.de)</option>' in html


def test_promotions_page_shows_the_queue_figures(logged_in, user):
    from ebay.models import Promotion

    Promotion.objects.create(owner=user, listing_id="177681098666", campaign_id="151310691012", ad_rate="5.0")
    html = logged_in.get("/start/promotions/").content.decode()
    assert 'data-stat="total">1<' in html
    assert 'name="listing_id"' in html and 'name="ad_rate"' in html and 'name="batch"' in html
    assert "pages/promotions.js" in html


def test_import_job_page_shows_counts_and_rejected_rows_with_the_csv_link(logged_in, api):
    upload = SimpleUploadedFile("products.csv", PRODUCTS_CSV.encode(), content_type="text/csv")
    started = api.post("/api/imports/products", {"file": upload}, format="multipart")
    assert started.status_code == 202, started.data
    job = run_to_end(started.data["job_id"])
    assert job.status == JobStatus.SUCCEEDED

    page = logged_in.get(f"/jobs/{job.id}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "Import of products.csv" in html
    assert 'data-import-count="created">2<' in html
    assert 'data-import-count="errors">1<' in html
    assert re.search(r"<td data-label=\"Row\">3</td>\s*<td data-label=\"Column\">price</td>", html)
    csv_url = f"/api/imports/{started.data['import_id']}/errors.csv"
    assert f'href="{csv_url}"' in html
    csv = b"".join(logged_in.get(csv_url).streaming_content).decode()
    assert "not-a-price" in csv
    # Retrying goes through the import's own endpoint, which also reopens the import.
    assert f'"retry_url": "/api/imports/{started.data["import_id"]}/retry"' in html
    assert '"retry_from_start": false' in html
    # The product search follows the import with a job of its own, linked from here.
    refresh = Job.objects.get(kind="imports.search_refresh")
    assert f'being updated with this import\'s products (<a href="/jobs/{refresh.id}/">its job</a>)' in html
    assert run_to_end(refresh.id).status == JobStatus.SUCCEEDED
    assert re.search(r"Product search:\s+up to date with this import since",
                     logged_in.get(f"/jobs/{job.id}/").content.decode())


def test_category_fetch_job_page_lists_the_failed_categories(logged_in, api, fake_ebay):
    from ebay.models import CategoryFetchItem

    started = api.post("/api/ebay/category-fetches",
                       {"marketplace_id": "EBAY_US", "parent_category_id": "26395", "max_categories": 6},
                       format="json")
    assert started.status_code == 202, started.data
    items = list(CategoryFetchItem.objects.filter(fetch_id=started.data["job_id"]).order_by("position"))
    fake_ebay.state.configure(not_found_categories=[items[1].category_id, items[4].category_id])
    job = run_to_end(started.data["job_id"])

    html = logged_in.get(f"/jobs/{job.id}/").content.decode()
    assert "Categories of EBAY_US under Health &amp; Beauty (26395)" in html
    assert 'data-fetch-count="failed">2<' in html
    assert 'data-fetch-count="processed">6 of 6<' in html
    for item in (items[1], items[4]):
        assert f"<code>{item.category_id}</code>" in html and item.category_name in html
    assert html.count("HTTP 404") >= 2
    assert f'data-retry-failed="/api/ebay/category-fetches/{job.id}/retry-failed"' in html


def test_a_job_page_of_another_users_import_is_404(client, other_user, api):
    upload = SimpleUploadedFile("products.csv", PRODUCTS_CSV.encode(), content_type="text/csv")
    job_id = api.post("/api/imports/products", {"file": upload}, format="multipart").data["job_id"]
    client.force_login(other_user)
    assert client.get(f"/jobs/{job_id}/").status_code == 404
