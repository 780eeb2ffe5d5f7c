"""The pages in a real headless Chromium against a real web server and a real qcluster."""

import re

import pytest
from playwright.sync_api import expect

from queueapp import services
from queueapp.models import Job, JobStatus
from tests.pages.conftest import TIMEOUT_MS, log_in, screenshot
from tests.support import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]

JOB_URL = re.compile(r".*/jobs/([0-9a-f-]{36})/$")


def job_id_of(page):
    return JOB_URL.match(page.url).group(1)


def test_start_a_demo_job_and_watch_the_bar_reach_100_percent(web, qcluster, new_page, browser_user):
    cluster = qcluster()
    site = web()
    page = new_page(site.url)
    log_in(page, "pat", next_path="/start/demo/")
    expect(page.get_by_role("heading", name="Count to n (demo)")).to_be_visible()

    page.get_by_label("Count to (n)").fill("40")
    page.get_by_label("Seconds per step (delay)").fill("0.15")
    status_calls = []
    page.on("request", lambda request: status_calls.append(request.url) if request.url.endswith("/status") else None)
    page.get_by_role("button", name="Start counting").click()
    page.wait_for_url(JOB_URL)
    job_id = job_id_of(page)
    assert Job.objects.get(id=job_id).owner == browser_user

    percent = page.locator('[data-field="percentage"]')
    # Seen part-way: the page follows the job live, not only after a reload.
    expect(percent).to_have_text(re.compile(r"^([1-9]|[1-9]\d)%$"), timeout=TIMEOUT_MS)
    expect(page.locator('[data-field="message"]')).to_contain_text("Counted")
    expect(page.get_by_text("You can close this tab")).to_be_visible()
    expect(percent).to_have_text("100%", timeout=TIMEOUT_MS)
    expect(page.locator("#progress [data-status-badge]")).to_have_text("Succeeded")
    bar = page.get_by_role("progressbar", name="Job progress")
    expect(bar).to_have_attribute("aria-valuenow", "100")
    expect(page.locator('[data-field="done_total"]')).to_have_text("40 of 40")
    expect(page.locator(".steps li.step-done")).to_have_count(3)
    expect(page.get_by_text("You can close this tab")).to_be_hidden()
    expect(page.locator('[data-action="cancel"]')).to_be_hidden()
    # The result and the history come from the server once the job ended.
    expect(page.locator("#result pre")).to_contain_text('"counted": 40')
    expect(page.locator("#history")).to_contain_text("Succeeded")
    assert len(status_calls) >= 3, status_calls
    screenshot(page, "job_page_succeeded")

    # Polling stops once the job has ended.
    calls_at_end = len(status_calls)
    page.wait_for_timeout(5000)
    assert len(status_calls) == calls_at_end

    # Reopened later, the page is right at once.
    page.reload()
    expect(percent).to_have_text("100%")
    expect(page.locator("#progress [data-status-badge]")).to_have_text("Succeeded")
    expect(page.locator('[data-field="poll-state"]')).to_have_text("")

    # The dashboard lists it among the recent jobs with a full bar, and the worker as alive.
    page.goto("/")
    row = page.locator(f'#recent tr[data-job-id="{job_id}"]')
    expect(row).to_contain_text("Succeeded")
    expect(row.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    expect(page.locator('[data-workers="alive"]')).to_be_visible(timeout=TIMEOUT_MS)
    assert "Traceback" not in cluster.output()


def test_cancel_a_running_job_from_its_page_and_retry_it(web, qcluster, new_page, browser_user):
    qcluster()
    site = web()
    job = services.submit("demo.count", {"n": 400, "delay": 0.1}, owner=browser_user)
    page = new_page(site.url)
    log_in(page, "pat", next_path=f"/jobs/{job.id}/")
    expect(page.locator("#progress [data-status-badge]")).to_have_text("Running", timeout=TIMEOUT_MS)
    expect(page.locator('[data-field="percentage"]')).not_to_have_text("0%", timeout=TIMEOUT_MS)
    expect(page.locator('[data-field="rate"]')).to_have_text(re.compile(r"/s$"))
    expect(page.locator('[data-field="eta"]')).to_have_text(re.compile(r"\d"))
    screenshot(page, "job_page_running")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel job").click()
    expect(page.locator('[data-field="action-result"]')).to_have_text(re.compile("Cancel requested|Cancelled"))
    expect(page.locator("#progress [data-status-badge]")).to_have_text("Cancelled", timeout=TIMEOUT_MS)
    cancelled = Job.objects.get(id=job.id)
    assert cancelled.status == JobStatus.CANCELLED and cancelled.progress_done < 400
    expect(page.locator("#history")).to_contain_text("Cancelled")
    expect(page.locator(".steps li.step-failed")).to_have_text(re.compile("Cancelled"))
    expect(page.get_by_role("button", name="Cancel job")).to_be_hidden()

    # Retry resumes from the checkpoint: the page starts following the job again.
    page.get_by_role("button", name="Retry (resume)").click()
    expect(page.locator('[data-field="action-result"]')).to_contain_text("Queued again")
    expect(page.locator("#progress [data-status-badge]")).to_have_text("Running", timeout=TIMEOUT_MS)
    expect(page.locator("#history")).to_contain_text("Retried", timeout=TIMEOUT_MS)
    wait_until(lambda: Job.objects.get(id=job.id).progress_done > cancelled.progress_done, timeout=60,
               message="the retried job to carry on")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel job").click()
    expect(page.locator("#progress [data-status-badge]")).to_have_text("Cancelled", timeout=TIMEOUT_MS)


def test_dashboard_warns_without_workers_and_follows_running_jobs(web, qcluster, new_page, browser_user):
    site = web()
    done = services.submit("demo.count", {"n": 5, "delay": 0}, owner=browser_user)
    Job.objects.filter(id=done.id).update(status=JobStatus.FAILED, error="Example: the input file was empty",
                                          finished_at=done.created_at)
    page = new_page(site.url)
    log_in(page, "pat")
    warning = page.get_by_role("alert").filter(has_text="No worker is running")
    expect(warning).to_be_visible()
    expect(page.locator('[data-figure="failed_last_24h"]')).to_have_text("1")

    job = services.submit("demo.count", {"n": 300, "delay": 0.1}, owner=browser_user)
    # A new job appears without reloading: the dashboard re-renders its tables when counts change.
    expect(page.locator(f'#waiting tr[data-job-id="{job.id}"]')).to_be_visible(timeout=TIMEOUT_MS)

    qcluster()
    expect(page.locator('[data-workers="alive"]')).to_be_visible(timeout=TIMEOUT_MS)
    expect(warning).to_have_count(0)
    row = page.locator(f'#running tr[data-job-id="{job.id}"]')
    expect(row).to_be_visible(timeout=TIMEOUT_MS)
    first = int(row.get_by_role("progressbar").get_attribute("aria-valuenow") or 0)
    # The bar moves in place between the 5 s refreshes of the list.
    page.wait_for_function(
        """([id, first]) => {
            const bar = document.querySelector('#running tr[data-job-id="' + id + '"] [data-bar]');
            return bar && Number(bar.getAttribute("aria-valuenow")) > first;
        }""",
        arg=[str(job.id), first], timeout=TIMEOUT_MS,
    )
    screenshot(page, "dashboard")

    # Filters: only failed jobs.
    page.get_by_label("Status").select_option("failed")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#recent tbody tr")).to_have_count(1)
    expect(page.locator("#recent")).to_contain_text("the input file was empty")
    expect(page.locator("#running")).to_contain_text("No job is running that matches the filters")
    services.cancel(job)


def test_pages_fit_a_phone_screen(web, new_page, browser_user):
    site = web()
    job = services.submit("demo.count", {"n": 10, "delay": 0.1}, owner=browser_user)
    page = new_page(site.url, width=390, height=844)
    log_in(page, "pat")
    pages = [("/", "dashboard_phone"), (f"/jobs/{job.id}/", "job_page_phone"), ("/start/demo/", None),
             ("/start/import/", None), ("/start/category-fetch/", None), ("/start/promotions/", "promotions_phone"),
             ("/start/analysis/", None)]
    for path, name in pages:
        page.goto(path)
        expect(page.get_by_role("navigation", name="Main")).to_be_visible()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} is {width}px wide on a 390px screen"
        if name:
            screenshot(page, name)


def test_server_side_field_errors_appear_under_the_field(web, new_page, browser_user):
    site = web()
    page = new_page(site.url)
    log_in(page, "pat", next_path="/start/demo/")
    page.get_by_label("Count to (n)").fill("-5")
    page.get_by_role("button", name="Start counting").click()
    field = page.get_by_label("Count to (n)")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#demo-n-error")).to_contain_text("greater than or equal to 0")
    expect(page.locator("[data-form-status]")).to_contain_text("Nothing was started")
    assert page.url.endswith("/start/demo/")
    assert not Job.objects.exists()

    # Corrected, it starts.
    field.fill("3")
    page.get_by_role("button", name="Start counting").click()
    page.wait_for_url(JOB_URL)


def test_log_out_from_the_navigation(web, new_page, browser_user):
    site = web()
    page = new_page(site.url)
    log_in(page, "pat")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/login/")
    page.goto("/")
    page.wait_for_url("**/login/?next=/")
