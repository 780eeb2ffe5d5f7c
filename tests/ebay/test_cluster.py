"""eBay jobs run by a real qcluster process against the fake eBay server over HTTP, including SIGKILL crashes."""

import time
from collections import Counter

import pytest

from ebay.models import CategoryFetch, CategoryFetchItem, Promotion
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


def test_a_worker_killed_mid_create_does_not_create_a_second_ad(api, fake_ebay, qcluster, settings):
    settings.EBAY_PROMOTION_FIRST_DELAY_SECONDS = 0
    # eBay creates the ad, then takes 30 s to answer: the worker dies in between.
    fake_ebay.state.configure(create_delay_seconds=30)
    env = worker_env(fake_ebay)
    cluster = qcluster(**env)
    job_id = api.post("/api/ebay/promotions", {"listing_id": "177681098666", "ad_rate": 5,
                                               "campaign_id": "151310691012"}, format="json").data["job_id"]
    wait_until(lambda: fake_ebay.state.ads_for("177681098666"), timeout=60,
               message=f"eBay to receive the create; worker log:\n{cluster.output()}")
    cluster.kill()
    assert Promotion.objects.get(job_id=job_id).create_sent_at is not None
    fake_ebay.state.configure(create_delay_seconds=0)
    time.sleep(2.5)
    dispatcher.tick()  # the reaper requeues the job: attempt 2 of 5

    restarted = qcluster(**env)
    wait_until(lambda: Job.objects.get(id=job_id).status == JobStatus.SUCCEEDED, timeout=60,
               message=f"the promotion to finish; worker log:\n{restarted.output()}")
    (ad,) = fake_ebay.state.ads_for("177681098666")
    promotion = Promotion.objects.get(job_id=job_id)
    assert promotion.status == "promoted" and promotion.ad_id == ad["adId"] and promotion.attempts == 2
    assert len([r for r in fake_ebay.state.requests_to("/ad") if r["method"] == "POST"]) == 1
    assert "[promotion-worker] ✓ Job" in restarted.output()



def test_two_clusters_never_start_more_than_10_promotion_attempts_a_minute(api, fake_ebay, qcluster, settings):
    settings.EBAY_PROMOTION_FIRST_DELAY_SECONDS = 0
    settings.EBAY_PROMOTION_STAGGER_SECONDS = 0
    env = worker_env(fake_ebay)
    clusters = [qcluster(**env), qcluster(**env)]
    listings = [str(177681098700 + i) for i in range(12)]
    response = api.post("/api/ebay/promotions", {"batch": [{"listing_id": x, "ad_rate": 5, "campaign_id":
                                                            "151310691012"} for x in listings]}, format="json")
    assert response.status_code == 202
    logs = lambda: "\n".join(c.output() for c in clusters)  # noqa: E731
    wait_until(lambda: len(fake_ebay.state.ads) == 10, timeout=60, message=f"10 ads; worker logs:\n{logs()}")
    time.sleep(3)
    assert len(fake_ebay.state.ads) == 10  # the other two wait for the minute to pass

    def all_promoted():
        dispatcher.tick()  # what the minute schedule does in production
        return Promotion.objects.filter(status="promoted").count() == 12

    wait_until(all_promoted, timeout=120, interval=2, message=f"all 12 promoted; worker logs:\n{logs()}")
    assert len([r for r in fake_ebay.state.requests_to("/ad") if r["method"] == "POST"]) == 12
    # The cap is on attempt starts (claims), as the engine records them.
    starts = sorted(e.created_at.timestamp() for job in Job.objects.filter(kind="ebay.promotion")
                    for e in job.events.filter(type="started"))
    assert len(starts) == 12
    assert all(sum(1 for t in starts if first <= t < first + 59.5) <= 10 for first in starts)
    assert starts[10] - starts[0] >= 59.5  # event times trail the gate's claim times by milliseconds
    assert "complete: 12 succeeded, 0 retrying, 0 failed" in logs()
