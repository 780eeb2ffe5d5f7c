"""The promotion queue (seed 001) through the API, the engine and the fake eBay server over HTTP."""

import logging
import threading
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from ebay import services
from ebay.models import EbayAccount, Promotion
from queueapp import dispatcher, runner
from queueapp.engine import Job, JobStatus

pytestmark = pytest.mark.django_db

URL = "/api/ebay/promotions"
CAMPAIGN = "151310691012"


def queue(api, listing_id="177681098666", ad_rate=5, **extra):
    response = api.post(URL, {"listing_id": listing_id, "ad_rate": ad_rate, **extra}, format="json")
    assert response.status_code == 202, response.data
    return response.data


def attempt(job_id):
    """Let time pass until the job's next attempt is due, then run it as a worker would."""
    Job.objects.filter(id=job_id, status=JobStatus.WAITING).update(run_after=timezone.now() - timedelta(seconds=1))
    dispatcher.wake_waiting()
    return runner.run_job(job_id)


def creates(fake_ebay):
    return [r for r in fake_ebay.state.requests_to("/ad") if r["method"] == "POST"]


def test_queueing_answers_at_once_and_the_first_attempt_is_a_minute_later(api, fake_ebay):
    before = timezone.now()
    body = queue(api, campaign_id=CAMPAIGN)
    assert body["success"] is True and body["job_id"] and "queued" in body["message"]
    job = Job.objects.get(id=body["job_id"])
    assert job.status == JobStatus.WAITING and job.max_attempts == 5
    assert timedelta(seconds=59) < job.run_after - before < timedelta(seconds=62)
    assert creates(fake_ebay) == []  # nothing was sent to eBay yet
    status = api.get(body["status_url"]).data
    assert {k: status[k] for k in ("id", "user", "listing_id", "ad_rate", "attempts", "max_attempts", "status",
                                   "last_error")} == {
        "id": body["job_id"], "user": "seller", "listing_id": "177681098666", "ad_rate": 5.0, "attempts": 0,
        "max_attempts": 5, "status": "pending", "last_error": ""}
    assert status["next_retry_at"] is not None and status["created_at"]
    # Not due yet: a worker that gets it early does nothing.
    assert runner.run_job(body["job_id"]) == "not claimed"


def test_a_listing_that_is_not_synced_for_two_attempts_is_promoted_on_the_third_at_the_policy_times(
        api, fake_ebay, caplog):
    fake_ebay.state.configure(sync_delay_calls={"177681098666": 2})
    body = queue(api, campaign_id=CAMPAIGN)
    job_id = body["job_id"]
    caplog.set_level(logging.INFO, logger="ebay.promotion_worker")

    delays = []
    for expected in ("retry", "retry", "succeeded"):
        started = timezone.now()
        assert attempt(job_id) == expected
        job = Job.objects.get(id=job_id)
        if expected == "retry":
            delays.append((job.run_after - started).total_seconds())
            status = api.get(body["status_url"]).data
            assert "Listing not synced yet" in status["last_error"] and "35048" in status["last_error"]
            assert status["next_retry_at"] is not None
    # The seed's backoff: 2 minutes after the first failure, then 4 (8 and a 10-minute cap follow).
    assert 119 <= delays[0] <= 122 and 239 <= delays[1] <= 242

    promotion = Promotion.objects.get(job_id=job_id)
    (ad,) = fake_ebay.state.ads_for("177681098666")
    assert promotion.status == "promoted" and promotion.ad_id == ad["adId"] and promotion.attempts == 3
    assert promotion.promoted_at and not promotion.already_existed
    status = api.get(body["status_url"]).data
    assert status["status"] == "promoted" and status["attempts"] == 3 and status["ad_id"] == ad["adId"]
    assert len(creates(fake_ebay)) == 3
    messages = [r.getMessage() for r in caplog.records]
    assert any("✗ Job" in m and "Listing not synced yet" in m for m in messages)
    assert any("✓ Job" in m and "succeeded" in m for m in messages)
    assert any("Queue stats:" in m for m in messages)
    events = list(Job.objects.get(id=job_id).events.values_list("message", flat=True))
    assert any("in 120s" in e for e in events) and any("in 240s" in e for e in events)
    assert any(e.startswith("Promoted: ad") for e in events)


def test_the_policy_gives_up_after_five_attempts_with_the_10_minute_cap(api, fake_ebay):
    fake_ebay.state.configure(ended_listings=["177681098666"])
    job_id = queue(api, campaign_id=CAMPAIGN)["job_id"]
    delays = []
    for n in range(5):
        started = timezone.now()
        outcome = attempt(job_id)
        if n < 4:
            assert outcome == "retry"
            delays.append(round((Job.objects.get(id=job_id).run_after - started).total_seconds() / 60))
    assert delays == [2, 4, 8, 10]
    job = Job.objects.get(id=job_id)
    assert job.status == JobStatus.FAILED and "gave up after 5" in job.error
    promotion = Promotion.objects.get(job_id=job_id)
    assert promotion.status == "failed" and "gave up after 5 attempts" in promotion.last_error


def test_a_batch_is_staggered_and_never_exceeds_the_per_minute_cap(api, fake_ebay, settings):
    listings = [str(177681098600 + i) for i in range(25)]
    before = timezone.now()
    response = api.post(URL, {"batch": [{"listing_id": x, "ad_rate": 5} for x in listings]}, format="json")
    assert response.status_code == 202
    body = response.data
    assert body["count"] == 25 and body["queued"] == 25 and len(body["job_ids"]) == 25
    jobs = {j.id: j for j in Job.objects.filter(id__in=body["job_ids"])}
    offsets = [(jobs[uuid.UUID(j)].run_after - before).total_seconds() for j in body["job_ids"]]
    # First attempt at +60 s, then every 5 s: +65, +70, ... +180.
    assert all(abs(offset - (60 + 5 * i)) < 2 for i, offset in enumerate(offsets))

    # All 25 due at once: only 10 attempts may start in the minute, across workers.
    Job.objects.filter(id__in=body["job_ids"]).update(run_after=timezone.now() - timedelta(seconds=1))
    dispatcher.wake_waiting()
    outcomes = [runner.run_job(job_id) for job_id in body["job_ids"]]
    assert outcomes.count("succeeded") == settings.EBAY_PROMOTION_RATE_PER_MINUTE == 10
    assert outcomes.count("not claimed") == 15
    assert len(creates(fake_ebay)) == 10
    held = Job.objects.filter(id__in=body["job_ids"], status=JobStatus.WAITING)
    assert held.count() == 15
    # They wait for the minute to pass, not for a retry: no attempt was used.
    assert all(j.attempts == 0 and j.run_after > timezone.now() + timedelta(seconds=50) for j in held)
    assert api.get(URL + "/stats").data["pending"] == 15


def test_already_exists_35036_counts_as_success_and_records_the_existing_ad(api, fake_ebay, user):
    with services.user_client(user) as client:
        existing = client.create_ad_by_listing_id(CAMPAIGN, "177681098666", "4.0")
    job_id = queue(api, campaign_id=CAMPAIGN)["job_id"]
    assert attempt(job_id) == "succeeded"
    promotion = Promotion.objects.get(job_id=job_id)
    assert promotion.status == "promoted" and promotion.already_existed and promotion.ad_id == existing
    assert len(fake_ebay.state.ads_for("177681098666")) == 1
    assert Job.objects.get(id=job_id).result["already_existed"] is True


@pytest.mark.parametrize("campaign_id, fault, reason", [
    ("999999", {}, "Campaign 999999 was not found"),
    (CAMPAIGN, {"not_eligible_listings": ["177681098666"]}, "cannot be promoted"),
])
def test_permanent_errors_fail_at_once_with_a_readable_reason(api, fake_ebay, campaign_id, fault, reason):
    fake_ebay.state.configure(**fault)
    job_id = queue(api, campaign_id=campaign_id)["job_id"]
    assert attempt(job_id) == "failed"
    job = Job.objects.get(id=job_id)
    assert job.status == JobStatus.FAILED and job.attempts == 1 and reason in job.error
    promotion = Promotion.objects.get(job_id=job_id)
    assert promotion.status == "failed" and reason in promotion.last_error
    assert api.get(f"{URL}/{job_id}").data["status"] == "failed"


def test_an_internal_ebay_error_35001_is_retried(api, fake_ebay):
    job_id = queue(api, campaign_id=CAMPAIGN)["job_id"]
    fake_ebay.state.configure(error_500_next=1)
    assert attempt(job_id) == "retry"
    assert "35001" in Promotion.objects.get(job_id=job_id).last_error
    assert attempt(job_id) == "succeeded"


def test_a_401_triggers_one_token_refresh(api, fake_ebay, user):
    with services.user_client(user) as client:
        client.get_campaigns()  # the user has a live access token
    grants = fake_ebay.state.token_grants["refresh_token"]
    fake_ebay.state.configure(reject_user_tokens=1)
    job_id = queue(api, campaign_id=CAMPAIGN)["job_id"]
    assert attempt(job_id) == "succeeded"
    assert fake_ebay.state.token_grants["refresh_token"] == grants + 1


def test_invalid_credentials_after_the_refresh_fail_permanently(api, fake_ebay, user):
    services.connect_account(user, "revoked-by-the-user")
    job_id = queue(api, campaign_id=CAMPAIGN)["job_id"]
    assert attempt(job_id) == "failed"
    assert "reconnect the eBay account" in Promotion.objects.get(job_id=job_id).last_error


def test_a_crash_mid_attempt_does_not_create_a_second_ad(api, fake_ebay):
    # eBay creates the ad but the answer never arrives, as when the worker dies mid-call.
    fake_ebay.state.configure(drop_after_create=["177681098666"])
    job_id = queue(api, campaign_id=CAMPAIGN)["job_id"]
    assert attempt(job_id) == "retry"
    assert Promotion.objects.get(job_id=job_id).create_sent_at is not None
    assert attempt(job_id) == "succeeded"
    (ad,) = fake_ebay.state.ads_for("177681098666")
    promotion = Promotion.objects.get(job_id=job_id)
    assert promotion.ad_id == ad["adId"] and promotion.create_sent_at is None
    assert len(creates(fake_ebay)) == 1  # the second attempt looked the ad up instead of creating again


def test_queueing_the_same_listing_twice_while_pending_does_not_create_a_second_job(api, fake_ebay):
    first = queue(api, campaign_id=CAMPAIGN)
    second = queue(api, campaign_id=CAMPAIGN, ad_rate=7)
    assert second["job_id"] == first["job_id"] and second["promotion"]["duplicate"] is True
    assert "already has a pending promotion" in second["message"]
    assert Promotion.objects.count() == 1 and Job.objects.filter(kind="ebay.promotion").count() == 1
    batch = api.post(URL, {"batch": [{"listing_id": "177681098666", "ad_rate": 5},
                                     {"listing_id": "177681098667", "ad_rate": 5}]}, format="json").data
    assert batch["count"] == 2 and batch["queued"] == 1 and batch["duplicates"] == 1
    assert batch["job_ids"][0] == first["job_id"]
    # Once settled, the listing can be queued again.
    assert attempt(first["job_id"]) == "succeeded"
    assert queue(api, campaign_id=CAMPAIGN)["job_id"] != first["job_id"]


@pytest.mark.parametrize("body, field", [
    ({"listing_id": "abc", "ad_rate": 5}, "listing_id"),
    ({"listing_id": "1" * 21, "ad_rate": 5}, "listing_id"),
    ({"listing_id": "123", "ad_rate": 1.9}, "ad_rate"),
    ({"listing_id": "123", "ad_rate": 100.1}, "ad_rate"),
    ({"listing_id": "123", "ad_rate": 5.25}, "ad_rate"),
    ({"listing_id": "123", "ad_rate": "lots"}, "ad_rate"),
    ({"listing_id": "123"}, "ad_rate"),
    ({"ad_rate": 5}, "listing_id"),
    ({"listing_id": "123", "ad_rate": 5, "campaign_id": "x1"}, "campaign_id"),
    ({"batch": []}, "batch"),
    ({"batch": [{"listing_id": "123", "ad_rate": 5}], "listing_id": "124"}, "batch"),
    ({"batch": [{"listing_id": "12x", "ad_rate": 5}]}, "batch"),
    ({"batch": "all of them"}, "batch"),
    ({"batch": [["123", 5]]}, "batch"),
    ({"listing_id": "123", "ad_rate": "NaN"}, "ad_rate"),
    ({"listing_id": "123", "ad_rate": "Infinity"}, "ad_rate"),
    (["123", 5], "non_field_errors"),
])
def test_bad_input_answers_400_with_the_field(api, fake_ebay, body, field):
    response = api.post(URL, body, format="json")
    assert response.status_code == 400 and field in response.data, response.data
    assert not Promotion.objects.exists()


def test_batch_size_limit(api, fake_ebay, settings):
    settings.EBAY_PROMOTION_BATCH_MAX = 3
    response = api.post(URL, {"batch": [{"listing_id": str(i), "ad_rate": 5} for i in range(1, 5)]}, format="json")
    assert response.status_code == 400 and "At most 3" in response.data["batch"][0]


def test_without_campaign_id_the_single_running_manual_campaign_or_the_default_is_used(api, fake_ebay, user):
    body = queue(api)
    assert Promotion.objects.get(job_id=body["job_id"]).campaign_id == CAMPAIGN
    # A second running manual campaign makes the choice ambiguous.
    fake_ebay.state.campaigns["151310691099"] = {**fake_ebay.state.campaigns[CAMPAIGN],
                                                 "campaignId": "151310691099", "campaignName": "Spring"}
    response = api.post(URL, {"listing_id": "177681098667", "ad_rate": 5}, format="json")
    assert response.status_code == 400 and "2 running manual campaigns" in response.data["campaign_id"][0]
    assert api.put("/api/ebay/account", {"default_campaign_id": "151310691099"}, format="json").status_code == 200
    body = queue(api, listing_id="177681098667")
    assert Promotion.objects.get(job_id=body["job_id"]).campaign_id == "151310691099"
    # None running: 400 with what to do.
    EbayAccount.objects.filter(user=user).update(default_campaign_id="")
    for campaign in fake_ebay.state.campaigns.values():
        campaign["campaignStatus"] = "ENDED"
    response = api.post(URL, {"listing_id": "177681098668", "ad_rate": 5}, format="json")
    assert response.status_code == 400 and "no running manual" in response.data["campaign_id"][0]


def test_stats_give_the_queue_and_the_last_24_hours(api, fake_ebay):
    fake_ebay.state.configure(sync_delay_calls={"2": 5})
    ok = queue(api, listing_id="1", campaign_id=CAMPAIGN)["job_id"]
    retrying = queue(api, listing_id="2", campaign_id=CAMPAIGN)["job_id"]
    failing = queue(api, listing_id="3", campaign_id="999")["job_id"]
    queue(api, listing_id="4", campaign_id=CAMPAIGN)
    assert attempt(ok) == "succeeded" and attempt(retrying) == "retry" and attempt(failing) == "failed"
    Job.objects.filter(id=retrying).update(run_after=timezone.now() - timedelta(seconds=1))

    stats = api.get(URL + "/stats").data
    assert (stats["total"], stats["ready"], stats["pending"]) == (2, 1, 1)
    assert (stats["succeeded_last_24h"], stats["failed_last_24h"]) == (1, 1)
    assert stats["success_rate_last_24h"] == 0.5 and stats["average_attempts_last_24h"] == 1.0


def test_history_answers_is_this_listing_promoted_and_users_see_only_their_own(api, other_api, fake_ebay):
    job_id = queue(api, campaign_id=CAMPAIGN)["job_id"]
    attempt(job_id)
    listed = api.get(URL + "?listing_id=177681098666").data["results"]
    assert [p["status"] for p in listed] == ["promoted"] and listed[0]["ad_id"]
    assert api.get(URL + "?status=promoted").data["count"] == 1
    assert api.get(URL + "?status=weird").status_code == 400
    assert other_api.get(f"{URL}/{job_id}").status_code == 404
    assert other_api.get(URL).data["count"] == 0
    assert other_api.get(URL + "/stats").data["total"] == 0


def test_cancel_through_the_generic_jobs_api_settles_the_promotion(api, fake_ebay):
    job_id = queue(api, campaign_id=CAMPAIGN)["job_id"]
    assert api.post(f"/api/jobs/{job_id}/cancel").status_code == 200
    # job_finished is sent on commit; the test transaction never commits, so run the hook as it would.
    services.on_job_finished(Job.objects.get(id=job_id))
    assert Promotion.objects.get(job_id=job_id).status == "cancelled"


def test_publish_offer_with_auto_promote_queues_the_promotion(api, fake_ebay):
    response = api.post("/api/ebay/offers/5005/publish",
                        {"merchant_data": {"auto_promote": True, "auto_promote_ad_rate": 6}}, format="json")
    assert response.status_code == 200, response.data
    listing_id = response.data["listing_id"]
    assert listing_id in fake_ebay.state.published
    promotion = Promotion.objects.get(listing_id=listing_id)
    assert response.data["promotion"]["id"] == str(promotion.job_id)
    assert promotion.ad_rate == Decimal("6.0") and promotion.source == "auto_promote"
    assert promotion.campaign_id == CAMPAIGN
    # eBay has not synced the new listing yet: the first attempt retries, a later one promotes it.
    fake_ebay.state.configure(sync_delay_seconds=3600)
    assert attempt(promotion.job_id) == "retry"
    fake_ebay.state.configure(sync_delay_seconds=0)
    assert attempt(promotion.job_id) == "succeeded"
    assert fake_ebay.state.ads_for(listing_id)[0]["bidPercentage"] == "6.0"

    plain = api.post("/api/ebay/offers/5006/publish", {}, format="json")
    assert plain.status_code == 200 and plain.data["promotion"] is None
    assert not Promotion.objects.filter(listing_id=plain.data["listing_id"]).exists()
    bad = api.post("/api/ebay/offers/5007/publish", {"merchant_data": {"auto_promote": True}}, format="json")
    assert bad.status_code == 400 and "auto_promote_ad_rate" in bad.data["merchant_data"]
    assert api.post("/api/ebay/offers/abc/publish", {}, format="json").data == {
        "offer_id": ["An offer id is a number."]}
    assert api.post("/api/ebay/offers/5008/publish", {"merchant_data": "yes"}, format="json").status_code == 400


def test_publish_offer_service_accepts_the_seed_draft_metadata(fake_ebay, user):
    result = services.publish_offer(user, "6001", {"autoPromote": True, "autoPromoteAdRate": 5})
    assert result["promotion"].created and result["promotion"].promotion.ad_rate == Decimal("5.0")


def test_queue_promotion_command(fake_ebay, user, capsys):
    call_command("queue_promotion", "177681098666", "--ad-rate", "5", "--campaign", CAMPAIGN, "--user", "seller")
    promotion = Promotion.objects.get()
    assert f"Queued job {promotion.job_id}" in capsys.readouterr().out and promotion.source == "command"
    call_command("queue_promotion", "177681098666", "--ad-rate", "5", "--user", "seller")
    assert "already has a pending promotion" in capsys.readouterr().out
    for args, message in ((["12x", "--ad-rate", "5"], "listing id"), (["1", "--ad-rate", "1"], "2.0 to 100.0"),
                          (["1", "--ad-rate", "5", "--user", "nobody"], "No user")):
        with pytest.raises(CommandError, match=message):
            call_command("queue_promotion", *args, **({} if "--user" in args else {"user": "seller"}))


def test_admin_retry_action_requeues_a_failed_promotion(client, staff_user, api, fake_ebay):
    job_id = queue(api, campaign_id="999")["job_id"]
    attempt(job_id)
    promotion = Promotion.objects.get(job_id=job_id)
    client.force_login(staff_user)
    assert client.get("/admin/ebay/promotion/").status_code == 200
    response = client.post("/admin/ebay/promotion/", {"action": "retry", "_selected_action": [promotion.pk]},
                           follow=True)
    assert response.status_code == 200 and b"queued again as job" in response.content
    again = Promotion.objects.exclude(pk=promotion.pk).get()
    assert again.status == "pending" and again.listing_id == promotion.listing_id and again.source == "admin"
    assert client.get("/admin/ebay/ebayaccount/").status_code == 200


def test_account_endpoint_stores_the_token_encrypted_and_never_returns_it(api, user, fake_ebay):
    response = api.put("/api/ebay/account", {"refresh_token": "v^1.1#secret", "default_campaign_id": CAMPAIGN},
                       format="json")
    assert response.status_code == 200 and "refresh_token" not in response.data
    assert response.data["connected"] and response.data["default_campaign_id"] == CAMPAIGN
    assert "secret" not in EbayAccount.objects.get(user=user).refresh_token_encrypted
    assert api.put("/api/ebay/account", {"default_campaign_id": "x"}, format="json").status_code == 400


def test_against_real_ebay_an_unconnected_user_gets_400(api, fake_ebay, settings):
    settings.EBAY_ENV = "production"
    response = api.post(URL, {"listing_id": "1", "ad_rate": 5, "campaign_id": CAMPAIGN}, format="json")
    assert response.status_code == 400 and "Connect one with PUT /api/ebay/account" in response.data["account"][0]


def test_retrying_a_failed_promotion_job_through_the_jobs_api_tries_again(api, fake_ebay):
    fake_ebay.state.configure(not_eligible_listings=["177681098666"])
    job_id = queue(api, campaign_id=CAMPAIGN)["job_id"]
    assert attempt(job_id) == "failed"
    fake_ebay.state.configure(not_eligible_listings=[])
    assert api.post(f"/api/jobs/{job_id}/retry").status_code == 202
    assert runner.run_job(job_id) == "succeeded"
    promotion = Promotion.objects.get(job_id=job_id)
    assert promotion.status == "promoted" and len(fake_ebay.state.ads_for("177681098666")) == 1


def test_a_spent_quota_pauses_the_promotion_without_using_an_attempt(api, fake_ebay):
    job_id = queue(api, campaign_id=CAMPAIGN)["job_id"]
    fake_ebay.state.configure(quota_limit=0, quota_window_seconds=300)
    assert attempt(job_id) == "yielded"
    job = Job.objects.get(id=job_id)
    assert job.status == JobStatus.WAITING and job.attempts == 0
    assert timedelta(seconds=280) < job.run_after - timezone.now() <= timedelta(seconds=301)
    assert "quota" in Promotion.objects.get(job_id=job_id).last_error
    fake_ebay.state.configure(quota_limit=None)
    assert attempt(job_id) == "succeeded"
    assert Job.objects.get(id=job_id).attempts == 1


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_requests_for_one_listing_make_one_job(user, fake_ebay, settings):
    services.account_for(user)  # connect before the race, as a returning user would be
    barrier = threading.Barrier(2)
    results, errors = [], []

    def request():
        try:
            barrier.wait(timeout=10)
            results.append(services.queue_promotions(
                user, [{"listing_id": "177681098666", "ad_rate": 5, "campaign_id": "151310691012"}])[0])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=request) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    assert sorted(r.created for r in results) == [False, True]
    assert len({r.promotion.pk for r in results}) == 1
    assert Promotion.objects.count() == 1 and Job.objects.filter(kind="ebay.promotion").count() == 1
