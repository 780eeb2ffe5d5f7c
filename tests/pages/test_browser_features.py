"""The feature start pages in a real headless Chromium: a product import and an eBay category fetch, run by a
real qcluster, followed live on the job page."""

import re

import pytest
from playwright.sync_api import expect

from queueapp.models import Job
from tests.pages.conftest import TIMEOUT_MS, log_in, screenshot
from tests.pages.test_feature_pages import PRODUCTS_CSV
from tests.support import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]

JOB_URL = re.compile(r".*/jobs/([0-9a-f-]{36})/$")


def csv_file(text, name="products.csv"):
    return {"name": name, "mimeType": "text/csv", "buffer": text.encode()}


def test_upload_a_product_file_and_see_the_counts(web, qcluster, new_page, browser_user):
    qcluster()
    site = web(IMPORTS_MAX_UPLOAD_BYTES=4096)
    page = new_page(site.url)
    log_in(page, "pat", next_path="/start/import/")
    posts = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" and "/api/imports/" in r.url else None)
    file_input = page.get_by_label("Product file (.xlsx or .csv)")

    # Too large: refused in the browser, before any upload.
    file_input.set_input_files(csv_file(PRODUCTS_CSV + "X" * 5000))
    page.get_by_role("button", name="Upload and import").click()
    expect(page.locator("#import-file-error")).to_contain_text("the limit is 4.0 KB")
    expect(file_input).to_have_attribute("aria-invalid", "true")
    assert posts == []

    # Wrong columns: the server's reasons appear under the field.
    file_input.set_input_files(csv_file("Foo,Bar\n1,2\n"))
    page.get_by_role("button", name="Upload and import").click()
    expect(page.locator("#import-file-error")).to_contain_text(re.compile("code", re.I))
    expect(page.locator("[data-form-status]")).to_contain_text("Nothing was started")
    assert len(posts) == 1 and not Job.objects.exists()

    # A good file: the job page follows the import to the end and shows its counts and rejected row.
    file_input.set_input_files(csv_file(PRODUCTS_CSV))
    page.get_by_role("button", name="Upload and import").click()
    page.wait_for_url(JOB_URL)
    expect(page.get_by_role("heading", name="Product import")).to_be_visible()
    expect(page.locator('[data-field="percentage"]')).to_have_text("100%", timeout=TIMEOUT_MS)
    expect(page.locator("#progress [data-status-badge]")).to_have_text("Succeeded")
    expect(page.locator('[data-import-count="created"]')).to_have_text("2")
    expect(page.locator('[data-import-count="errors"]')).to_have_text("1")
    rejected = page.locator("#import table tbody tr")
    expect(rejected).to_have_count(1)
    expect(rejected).to_contain_text("price")
    link = page.get_by_role("link", name="Download all rejected rows as CSV")
    response = page.request.get(link.get_attribute("href"))
    assert response.status == 200 and "not-a-price" in response.text()
    screenshot(page, "job_page_import")


def test_start_a_category_fetch_and_see_the_failed_categories(web, qcluster, new_page, browser_user,
                                                               fake_ebay):
    from ebay.models import CategoryFetchItem

    site = web(**fake_ebay.env)
    page = new_page(site.url)
    log_in(page, "pat", next_path="/start/category-fetch/")
    expect(page.get_by_label("Marketplace")).to_have_value("EBAY_US")

    # A parent that is not in the tree: eBay's answer, under the field.
    page.get_by_label("Parent category id (optional)").fill("999999999")
    page.get_by_role("button", name="Fetch categories").click()
    expect(page.locator("#fetch-parent-error")).to_contain_text("is not in the EBAY_US category tree")

    page.get_by_label("Parent category id (optional)").fill("26395")
    page.get_by_label("Max categories (optional)").fill("8")
    page.get_by_role("button", name="Fetch categories").click()
    page.wait_for_url(JOB_URL)
    job_id = JOB_URL.match(page.url).group(1)
    expect(page.locator("#progress [data-status-badge]")).to_have_text("Queued")

    # Two categories will answer 404; then a worker starts.
    items = list(CategoryFetchItem.objects.filter(fetch_id=job_id).order_by("position"))
    assert len(items) == 8
    broken = [items[2], items[6]]
    fake_ebay.state.configure(not_found_categories=[item.category_id for item in broken])
    qcluster(**fake_ebay.env)

    expect(page.locator("#progress [data-status-badge]")).to_have_text("Succeeded", timeout=TIMEOUT_MS)
    expect(page.locator('[data-fetch-count="failed"]')).to_have_text("2")
    expect(page.locator('[data-fetch-count="processed"]')).to_have_text("8 of 8")
    failed_rows = page.locator("#category-fetch table tbody tr")
    expect(failed_rows).to_have_count(2)
    for item in broken:
        expect(page.locator("#category-fetch")).to_contain_text(item.category_name)
    expect(failed_rows.first).to_contain_text("HTTP 404")
    screenshot(page, "job_page_category_fetch")

    # The categories are back: fetching the failed ones again starts a new job, which opens.
    fake_ebay.state.configure(reset=True)
    page.get_by_role("button", name="Fetch the failed categories again").click()
    page.wait_for_url(lambda url: JOB_URL.match(url) is not None and job_id not in url)
    expect(page.locator("#progress [data-status-badge]")).to_have_text("Succeeded", timeout=TIMEOUT_MS)
    expect(page.locator('[data-fetch-count="processed"]')).to_have_text("2 of 2")
    expect(page.locator('[data-fetch-count="failed"]')).to_have_text("0")
    wait_until(lambda: Job.objects.filter(kind="ebay.category_fetch").count() == 2, message="the retry job")


def test_queue_a_pasted_batch_of_promotions(web, new_page, browser_user, fake_ebay):
    site = web(**fake_ebay.env)
    page = new_page(site.url)
    log_in(page, "pat", next_path="/start/promotions/")
    batch = page.get_by_label("Listings, one per line")
    expect(page.locator('[data-stat="total"]')).to_have_text("0")

    # A line the page cannot read is explained before anything is sent.
    batch.fill("177681098666 5.0\njust-one-value")
    page.get_by_role("button", name="Queue the batch").click()
    expect(page.locator("#promo-batch-error")).to_contain_text("Line 2: expected a listing id and an ad rate")

    # The server's reasons come back per line.
    batch.fill("177681098666, 5.0\n\n177681098667; 1.0")
    page.get_by_role("button", name="Queue the batch").click()
    expect(page.locator("#promo-batch-error")).to_contain_text(re.compile(r"Line 3: ad_rate: .*greater than or equal to 2"))
    from ebay.models import Promotion
    assert not Promotion.objects.exists()

    # Pasted from a spreadsheet (tabs): one job per listing, listed with links; the queue figures follow.
    batch.fill("177681098666\t5.0\n177681098667\t7.5\t151310691012")
    page.get_by_role("button", name="Queue the batch").click()
    started = page.locator("#promotion-batch [data-started] a")
    expect(started).to_have_count(2)
    expect(page.locator("#promotion-batch [data-form-status]")).to_contain_text("Queued 2 promotion jobs")
    expect(page.locator('[data-stat="total"]')).to_have_text("2", timeout=TIMEOUT_MS)
    assert set(Promotion.objects.values_list("listing_id", flat=True)) == {"177681098666", "177681098667"}
    screenshot(page, "promotions")

    # Each opens its job page, waiting for its first attempt.
    started.first.click()
    page.wait_for_url(JOB_URL)
    expect(page.locator("#progress [data-status-badge]")).to_have_text("Waiting")
    expect(page.locator("#promotion")).to_contain_text("Listing 177681098666")
    expect(page.locator('[data-when="next-attempt"]')).to_be_visible()


def test_start_a_sales_analysis_and_download_its_report(web, qcluster, new_page, browser_user):
    from datetime import date, timedelta
    from decimal import Decimal

    from tests.analysis.factories import Rec, business_report_us

    records = [Rec(date(2026, 10, 1) + timedelta(days=day), asin, f"Mug {asin[-1]}", 40 + day, 60 + day,
                   2 + day % 3, Decimal("19.99") * (2 + day % 3))
               for day in range(14) for asin in ("B0AAAAAAA1", "B0AAAAAAA2")]
    report = business_report_us(records)
    qcluster()
    site = web()
    page = new_page(site.url)
    log_in(page, "pat", next_path="/start/analysis/")

    page.get_by_label("ASIN or product URL").fill("https://www.amazon.com/dp/B0AAAAAAA1")
    page.get_by_role("button", name="Start the analysis").click()
    expect(page.locator("#analysis-revenue-error")).to_have_text("Choose a file.")

    page.get_by_label("Revenue report (revenue_csv)").set_input_files(
        {"name": "business-report.csv", "mimeType": "text/csv", "buffer": report})
    page.get_by_role("button", name="Start the analysis").click()
    page.wait_for_url(JOB_URL)
    expect(page.locator("#progress [data-status-badge]")).to_have_text("Succeeded", timeout=TIMEOUT_MS)
    expect(page.locator(".steps li")).to_have_count(5)
    expect(page.locator(".steps li.step-done")).to_have_count(5)
    download = page.get_by_role("link", name="Download the report (xlsx)")
    response = page.request.get(download.get_attribute("href"))
    assert response.status == 200
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert response.body()[:2] == b"PK"
    screenshot(page, "job_page_analysis")
