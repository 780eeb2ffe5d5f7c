"""Category-fetch jobs (seed 000) through the API and the engine, against the fake eBay server over HTTP."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from ebay.models import CategoryAspects, CategoryFetch, CategoryFetchItem
from queueapp import dispatcher, runner
from queueapp.engine import Job, JobStatus

pytestmark = pytest.mark.django_db

URL = "/api/ebay/category-fetches"


def start(api, **body):
    response = api.post(URL, {"marketplace_id": "EBAY_US", "parent_category_id": "26395", **body}, format="json")
    assert response.status_code == 202, response.data
    return response.data


def run_to_end(job_id, max_runs=200):
    """Run the job in this process as workers would, letting time pass for waits."""
    for _ in range(max_runs):
        job = Job.objects.get(id=job_id)
        if job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
            return job
        if job.status == JobStatus.WAITING:
            Job.objects.filter(id=job_id).update(run_after=timezone.now() - timedelta(seconds=1))
            dispatcher.wake_waiting()
        runner.run_job(job_id)
    raise AssertionError("job did not finish")


def aspect_calls(fake_ebay):
    return [r["query"]["category_id"] for r in fake_ebay.state.requests_to("get_item_aspects_for_category")]


def test_start_answers_202_at_once_with_the_seed_fields(api, fake_ebay):
    body = start(api, max_categories=10)
    assert body["ok"] is True
    assert body["total_categories"] == 10
    assert body["parent_category"] == "Health & Beauty (26395)"
    assert body["status"] == "queued" and "10 categories" in body["message"]
    assert body["status_url"].endswith(f"/api/ebay/category-fetches/{body['job_id']}")
    assert body["job_status_url"].endswith(f"/api/jobs/{body['job_id']}/status")
    # Nothing was fetched yet: the request only read the tree.
    assert aspect_calls(fake_ebay) == []
    items = CategoryFetchItem.objects.filter(fetch_id=body["job_id"])
    assert items.count() == 10 and set(items.values_list("status", flat=True)) == {"pending"}
    status = api.get(body["status_url"]).data
    assert status["status"] == "queued" and status["processed"] == 0 and status["percentage"] == 0


def test_a_fetch_stores_aspects_records_failures_and_completes(api, fake_ebay):
    body = start(api, max_categories=25)
    items = list(CategoryFetchItem.objects.filter(fetch_id=body["job_id"]).order_by("position"))
    missing = items[3]
    fake_ebay.state.configure(not_found_categories=[missing.category_id])

    job = run_to_end(body["job_id"])
    assert job.status == JobStatus.SUCCEEDED

    status = api.get(body["status_url"]).data
    assert status["status"] == "completed"
    assert (status["total_categories"], status["processed"], status["success"], status["failed"]) == (25, 25, 24, 1)
    assert status["percentage"] == 100 and status["eta_seconds"] == 0
    assert status["rate_per_second"] > 0
    assert status["parent_category"] == "Health & Beauty (26395)"
    assert status["errors"] == [{"category_id": missing.category_id, "category_name": missing.category_name,
                                 "error": status["errors"][0]["error"]}]
    assert status["errors"][0]["error"].startswith("HTTP 404")
    for field in ("job_id", "created_at", "updated_at"):
        assert status[field]
    # The taxonomy store holds every fetched leaf, usable by the rest of the app.
    stored = CategoryAspects.objects.get(category_id=items[0].category_id)
    assert stored.category_tree_id == "0" and stored.category_tree_version == "128"
    assert stored.marketplace_id == "EBAY_US" and stored.aspects[0]["localizedAspectName"] == "Brand"
    assert CategoryAspects.objects.count() == 24
    aspects = api.get(f"/api/ebay/categories/{items[0].category_id}/aspects").data
    assert aspects["category_name"] == items[0].category_name and aspects["aspects"] == stored.aspects
    assert api.get(f"/api/ebay/categories/{missing.category_id}/aspects").status_code == 404
    # The generic job endpoints tell the same story.
    generic = api.get(f"/api/jobs/{body['job_id']}/status").data
    assert (generic["progress_done"], generic["succeeded_count"], generic["failed_count"]) == (25, 24, 1)
    result = api.get(f"/api/jobs/{body['job_id']}/result").data["result"]
    assert (result["processed"], result["success"], result["failed"]) == (25, 24, 1)
    assert result["parent_category"] == "Health & Beauty (26395)" and result["errors"] == status["errors"]
    checkpoint = api.get(f"/api/jobs/{body['job_id']}/").data["checkpoint"]
    assert (checkpoint["total_categories"], checkpoint["processed"], checkpoint["failed"]) == (25, 25, 1)


def test_unknown_parent_and_bad_input_answer_400_with_the_reason(api, fake_ebay):
    response = api.post(URL, {"parent_category_id": "999999999"}, format="json")
    assert response.status_code == 400
    assert "999999999" in response.data["parent_category_id"][0] and "62005" in response.data["parent_category_id"][0]
    response = api.post(URL, {"marketplace_id": "EBAY_XX"}, format="json")
    assert response.status_code == 400 and "EBAY_XX" in response.data["marketplace_id"][0]
    for bad in ({"parent_category_id": "abc"}, {"max_categories": 0}, {"max_categories": "many"},
                {"marketplace_id": "us"}, {"force": "perhaps"}):
        response = api.post(URL, bad, format="json")
        assert response.status_code == 400 and set(response.data) == set(bad), (bad, response.data)
    response = api.post(URL, ["26395"], format="json")
    assert response.status_code == 400 and "non_field_errors" in response.data
    assert not CategoryFetch.objects.exists()


def test_ebay_trouble_at_start_answers_503_not_500(api, fake_ebay):
    fake_ebay.state.configure(error_500_next=5)
    response = api.post(URL, {"parent_category_id": "26395"}, format="json")
    assert response.status_code == 503 and "try again" in response.data["detail"]
    fake_ebay.state.configure(reset=True, quota_limit=0, quota_window_seconds=300)
    response = api.post(URL, {"parent_category_id": "26395"}, format="json")
    assert response.status_code == 503 and int(response["Retry-After"]) > 200


def test_whole_tree_without_parent(api, fake_ebay):
    response = api.post(URL, {"max_categories": 5}, format="json")
    assert response.status_code == 202
    assert response.data["parent_category"] is None and response.data["total_categories"] == 5
    assert fake_ebay.state.requests_to("/category_tree/0")[0]["path"] == "/commerce/taxonomy/v1/category_tree/0"


def test_a_500_moves_the_category_back_and_it_is_retried_within_the_job(api, fake_ebay, settings):
    body = start(api, max_categories=6)
    items = list(CategoryFetchItem.objects.filter(fetch_id=body["job_id"]).order_by("position"))
    fake_ebay.state.configure(error_500_categories={items[1].category_id: 1, items[2].category_id: 10})

    run_to_end(body["job_id"])

    status = api.get(body["status_url"]).data
    assert (status["success"], status["failed"]) == (5, 1)
    assert status["errors"][0]["category_id"] == items[2].category_id
    assert "HTTP 500" in status["errors"][0]["error"] and "after 3 attempts" in status["errors"][0]["error"]
    recovered = CategoryFetchItem.objects.get(fetch_id=body["job_id"], category_id=items[1].category_id)
    assert recovered.status == "fetched" and recovered.attempts == 2
    assert aspect_calls(fake_ebay).count(items[2].category_id) == settings.EBAY_CATEGORY_ITEM_MAX_ATTEMPTS


def test_a_spent_quota_pauses_the_job_until_it_resets_without_losing_categories(api, fake_ebay):
    body = start(api, max_categories=8)
    fake_ebay.state.configure(quota_limit=3, quota_window_seconds=120)

    assert runner.run_job(body["job_id"]) == "yielded"
    job = Job.objects.get(id=body["job_id"])
    assert job.status == JobStatus.WAITING and job.attempts == 0  # a pause is not a failed attempt
    assert timedelta(seconds=100) < job.run_after - timezone.now() <= timedelta(seconds=121)
    assert "quota" in job.message
    status = api.get(body["status_url"]).data
    assert status["processed"] == 3 and status["failed"] == 0 and status["status"] == "processing"
    assert status["next_attempt_at"] is not None
    # Woken before the reset nothing runs; after it the job carries on where it stopped.
    assert runner.run_job(body["job_id"]) == "not claimed"
    fake_ebay.state.configure(quota_limit=None)
    job = run_to_end(body["job_id"])
    assert job.status == JobStatus.SUCCEEDED
    status = api.get(body["status_url"]).data
    assert (status["processed"], status["success"], status["failed"]) == (8, 8, 0)
    assert len(set(aspect_calls(fake_ebay))) == 8


def test_time_slices_yield_and_resume_from_the_checkpoint(api, fake_ebay, settings):
    settings.EBAY_CATEGORY_FETCH_SLICE_SECONDS = 0  # one category per slice
    body = start(api, max_categories=4)
    outcomes = [runner.run_job(body["job_id"]) for _ in range(4)]
    assert outcomes == ["yielded", "yielded", "yielded", "succeeded"]
    job = Job.objects.get(id=body["job_id"])
    assert job.attempts == 1  # yields never used up attempts
    assert list(job.events.filter(type="yielded").values_list("message", flat=True))[0].startswith("Time slice used")
    calls = aspect_calls(fake_ebay)
    assert len(calls) == 4 and len(set(calls)) == 4  # nothing fetched twice


def test_retry_failed_requeues_only_the_failed_categories(api, fake_ebay):
    body = start(api, max_categories=10)
    items = list(CategoryFetchItem.objects.filter(fetch_id=body["job_id"]).order_by("position"))
    broken = [items[2].category_id, items[7].category_id]
    fake_ebay.state.configure(not_found_categories=broken)
    run_to_end(body["job_id"])

    fake_ebay.state.configure(not_found_categories=[])
    response = api.post(f"{URL}/{body['job_id']}/retry-failed")
    assert response.status_code == 202
    retry = response.data
    assert retry["job_id"] != body["job_id"] and retry["total_categories"] == 2
    assert retry["retry_of"] == body["job_id"] and retry["parent_category"] == "Health & Beauty (26395)"
    before = len(aspect_calls(fake_ebay))
    run_to_end(retry["job_id"])
    assert sorted(aspect_calls(fake_ebay)[before:]) == sorted(broken)
    assert api.get(retry["status_url"]).data["success"] == 2
    # Nothing left to retry; a running fetch cannot be retried.
    assert api.post(f"{URL}/{retry['job_id']}/retry-failed").status_code == 409


def test_rerun_skips_fresh_categories_unless_forced(api, fake_ebay, settings):
    first = start(api, max_categories=5)
    run_to_end(first["job_id"])
    assert len(aspect_calls(fake_ebay)) == 5

    second = start(api, max_categories=7)
    run_to_end(second["job_id"])
    status = api.get(second["status_url"]).data
    assert (status["success"], status["skipped"], status["failed"]) == (7, 5, 0)
    assert len(aspect_calls(fake_ebay)) == 7  # only the two new ones

    forced = start(api, max_categories=5, force=True)
    run_to_end(forced["job_id"])
    assert len(aspect_calls(fake_ebay)) == 12

    settings.EBAY_CATEGORY_FRESHNESS_HOURS = 1
    CategoryAspects.objects.update(fetched_at=timezone.now() - timedelta(hours=2))
    stale = start(api, max_categories=5)
    run_to_end(stale["job_id"])
    assert api.get(stale["status_url"]).data["skipped"] == 0 and len(aspect_calls(fake_ebay)) == 17


def test_cancel_a_queued_fetch(api, fake_ebay):
    body = start(api, max_categories=5)
    response = api.post(f"{URL}/{body['job_id']}/cancel")
    assert response.status_code == 200 and response.data["status"] == "cancelled"
    assert runner.run_job(body["job_id"]) == "not claimed"
    assert aspect_calls(fake_ebay) == []
    assert api.post(f"{URL}/{body['job_id']}/cancel").status_code == 409


def test_list_shows_active_and_recent_fetches_and_users_see_only_their_own(api, other_api, staff_api, fake_ebay):
    done = start(api, max_categories=2)
    run_to_end(done["job_id"])
    active = start(api, max_categories=3)
    theirs = other_api.post(URL, {"parent_category_id": "26395", "max_categories": 1}, format="json").data

    listed = api.get(URL).data
    assert [f["job_id"] for f in listed["results"]] == [active["job_id"], done["job_id"]]
    assert [f["job_id"] for f in api.get(URL + "?active=true").data["results"]] == [active["job_id"]]
    assert api.get(URL + "?active=maybe").status_code == 400
    assert api.get(f"{URL}/{theirs['job_id']}").status_code == 404
    assert api.post(f"{URL}/{theirs['job_id']}/cancel").status_code == 404
    assert staff_api.get(URL).data["count"] == 3


def test_fetch_command_queues_a_job(fake_ebay, capsys):
    call_command("fetch_ebay_categories", "--marketplace", "EBAY_US", "--parent", "26395", "--max", "3")
    out = capsys.readouterr().out
    fetch = CategoryFetch.objects.get()
    assert f"Job {fetch.job_id}: 3 categories queued under Health & Beauty (26395)" in out
    with pytest.raises(CommandError, match="not in the EBAY_US category tree"):
        call_command("fetch_ebay_categories", "--parent", "123456789")
    with pytest.raises(CommandError, match="--max"):
        call_command("fetch_ebay_categories", "--max", "0")


def test_fetch_command_waits_with_a_progress_bar(fake_ebay, capsys, monkeypatch):
    # A worker runs the job while the command polls: simulated by running it on the first poll.
    from ebay.management.commands import fetch_ebay_categories as command

    real_sleep = command.time.sleep

    def work_then_sleep(seconds):
        fetch = CategoryFetch.objects.order_by("-created_at").first()
        run_to_end(fetch.job_id)
        real_sleep(0)

    monkeypatch.setattr(command.time, "sleep", work_then_sleep)
    fake_ebay.state.configure(not_found_categories=["178320"])
    call_command("fetch_ebay_categories", "--parent", "26395", "--max", "4", "--wait")
    out = capsys.readouterr().out
    assert "[##############################] 4/4 100% ok 3 failed 1 completed" in out
    assert "failed: 178320" in out and "HTTP 404" in out


def test_admin_pages_for_fetches_and_the_taxonomy_store(client, staff_user, api, fake_ebay):
    body = start(api, max_categories=3)
    run_to_end(body["job_id"])
    client.force_login(staff_user)
    for url in ("/admin/ebay/categoryfetch/", f"/admin/ebay/categoryfetch/{body['job_id']}/change/",
                "/admin/ebay/categoryfetchitem/", "/admin/ebay/categoryaspects/"):
        response = client.get(url)
        assert response.status_code == 200, url
    assert b"Health &amp; Beauty" in client.get("/admin/ebay/categoryfetch/").content


def test_refused_application_credentials_fail_the_request_and_the_job_with_what_to_do(api, fake_ebay, settings):
    body = start(api, max_categories=3)
    settings.EBAY_ENV = "production"  # no EBAY_CLIENT_ID: eBay cannot be called
    response = api.post(URL, {"parent_category_id": "26395"}, format="json")
    assert response.status_code == 502 and "EBAY_CLIENT_ID" in response.data["detail"]
    cache.clear()
    job = run_to_end(body["job_id"])
    assert job.status == JobStatus.FAILED and job.attempts == 1 and "EBAY_CLIENT_ID" in job.error
    assert api.get(body["status_url"]).data["status"] == "failed"
