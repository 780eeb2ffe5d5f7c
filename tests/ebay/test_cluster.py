"""eBay jobs run by a real qcluster process against the fake eBay server over HTTP, including SIGKILL crashes."""

import time
from collections import Counter

import pytest

from ebay.models import CategoryFetch, CategoryFetchItem
from queueapp import dispatcher
from queueapp.engine import Job, JobStatus
from tests.support import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]


def worker_env(fake_ebay, **extra):
    return {"EBAY_ENV": "fake", "EBAY_CLIENT_ID": "", "EBAY_API_BASE_URL": fake_ebay.url,
            "JOBS_LEASE_SECONDS": 2, **extra}


def fetch_row(job_id):
    return CategoryFetch.objects.select_related("job").get(job_id=job_id)


def test_a_fetch_resumes_after_a_worker_crash_without_refetching_done_categories(api, fake_ebay, qcluster):
    env = worker_env(fake_ebay, EBAY_CALL_SPACING_SECONDS=0.05, EBAY_CATEGORY_FETCH_SLICE_SECONDS=2)
    cluster = qcluster(**env)
    response = api.post("/api/ebay/category-fetches", {"parent_category_id": "26395", "max_categories": 80},
                        format="json")
    job_id = response.data["job_id"]
    wait_until(lambda: fetch_row(job_id).processed >= 15, timeout=60,
               message=f"the fetch to get going; worker log:\n{cluster.output()}")

    cluster.kill()  # SIGKILL to the whole process group
    done_before = set(CategoryFetchItem.objects.filter(fetch_id=job_id, status="fetched")
                      .values_list("category_id", flat=True))
    assert 15 <= len(done_before) < 80
    time.sleep(2.5)  # the lease runs out
    dispatcher.tick()
    assert Job.objects.get(id=job_id).status == JobStatus.QUEUED

    restarted = qcluster(**env)
    wait_until(lambda: fetch_row(job_id).job.status == JobStatus.SUCCEEDED, timeout=90,
               message=f"the fetch to finish after the restart; worker log:\n{restarted.output()}")
    fetch = fetch_row(job_id)
    assert (fetch.processed, fetch.success, fetch.failed) == (80, 80, 0)
    calls = Counter(r["query"]["category_id"] for r in fake_ebay.state.requests_to("get_item_aspects_for_category"))
    assert set(calls) == set(CategoryFetchItem.objects.filter(fetch_id=job_id).values_list("category_id", flat=True))
    assert all(calls[category] == 1 for category in done_before)  # done categories were not fetched again
    # At most the one category in flight at the kill was asked twice.
    assert sum(1 for n in calls.values() if n > 1) <= 1
    assert fetch.job.attempts == 2
    assert fetch.job.events.filter(type="yielded").exists()  # it ran in slices
    assert api.get(f"/api/ebay/category-fetches/{job_id}").data["status"] == "completed"


def test_cancel_stops_a_running_fetch(api, fake_ebay, qcluster):
    cluster = qcluster(**worker_env(fake_ebay, EBAY_CALL_SPACING_SECONDS=0.1))
    job_id = api.post("/api/ebay/category-fetches", {"parent_category_id": "26395", "max_categories": 200},
                      format="json").data["job_id"]
    wait_until(lambda: fetch_row(job_id).processed >= 3, timeout=60,
               message=f"the fetch to start; worker log:\n{cluster.output()}")
    response = api.post(f"/api/ebay/category-fetches/{job_id}/cancel")
    assert response.status_code == 202
    wait_until(lambda: fetch_row(job_id).job.status == JobStatus.CANCELLED, timeout=30,
               message=f"the cancel to land; worker log:\n{cluster.output()}")
    stopped_at = fetch_row(job_id).processed
    time.sleep(0.5)
    assert fetch_row(job_id).processed == stopped_at < 200
    assert api.get(f"/api/ebay/category-fetches/{job_id}").data["status"] == "cancelled"
