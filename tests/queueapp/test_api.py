import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from queueapp import runner
from queueapp.engine import JobStatus, submit
from queueapp.models import Job
from tests.queueapp import kinds  # noqa: F401  registers the test kinds

pytestmark = pytest.mark.django_db


def schedule(api, **body):
    return api.post("/api/jobs/", body, format="json")


def test_schedule_a_demo_job_and_follow_it(api, user):
    response = schedule(api, kind="demo.count", params={"n": 2, "delay": 0})
    assert response.status_code == 202, response.data
    job_id = response.data["job_id"]
    assert response.data["status_url"].endswith(f"/api/jobs/{job_id}/status")
    job = Job.objects.get(id=job_id)
    assert job.owner == user and job.params == {"n": 2, "delay": 0.0}

    status = api.get(f"/api/jobs/{job_id}/status")
    assert status.status_code == 200 and status.data["status"] == "queued"
    assert api.get(f"/api/jobs/{job_id}/result").status_code == 202

    runner.run_job(job.id)
    status = api.get(f"/api/jobs/{job_id}/status").data
    assert status["status"] == "succeeded" and status["percentage"] == 100
    assert status["progress_done"] == 2 and status["elapsed_seconds"] is not None
    result = api.get(f"/api/jobs/{job_id}/result")
    assert result.status_code == 200 and result.data["result"] == {"counted": 2, "resumed_from": 0}

    detail = api.get(f"/api/jobs/{job_id}/")
    assert detail.status_code == 200
    assert [e["type"] for e in detail.data["events"]][:2] == ["created", "started"]
    assert detail.data["events"][-1]["type"] == "succeeded"
    assert detail.data["owner"] == "seller" and detail.data["title"] == "Count to n (demo)"


def test_status_while_running_has_rate_and_eta(api, user):
    job = submit("demo.count", {"n": 10}, owner=user)
    _, kind, token = runner.claim(job.id)
    Job.objects.filter(id=job.id).update(started_at=timezone.now() - timedelta(seconds=10))
    ctx = runner.JobContext(job, kind, token)
    ctx.progress(5, total=10, message="Counted 5 of 10")
    data = api.get(f"/api/jobs/{job.id}/status").data
    assert data["status"] == "running" and data["percentage"] == 50
    assert data["message"] == "Counted 5 of 10"
    assert 0.4 < data["rate_per_second"] < 0.6
    assert 8 < data["eta_seconds"] < 12


@pytest.mark.parametrize(
    "body, field, fragment",
    [
        ({"kind": "no.such", "params": {}}, "kind", "Unknown job kind"),
        ({"kind": "test.flaky", "params": {}}, "kind", "cannot be scheduled here"),
        ({"params": {}}, "kind", "required"),
        ({"kind": "demo.count", "params": {"n": -3}}, "params", "greater than or equal to 0"),
        ({"kind": "demo.count", "params": {"n": "many"}}, "params", "valid integer"),
        ({"kind": "demo.count", "params": [1, 2]}, "params", "JSON object"),
        ({"kind": "demo.count", "run_after": "tomorrow"}, "run_after", "Datetime has wrong format"),
        ({"kind": "demo.count", "priority": 1000}, "priority", "less than or equal to 100"),
    ],
)
def test_schedule_rejects_bad_input_with_a_reason(api, body, field, fragment):
    response = schedule(api, **body)
    assert response.status_code == 400
    assert fragment in str(response.data[field])
    assert not Job.objects.exists()


def test_schedule_rejects_a_body_that_is_not_json(api):
    response = api.post("/api/jobs/", "{not json", content_type="application/json")
    assert response.status_code == 400 and "JSON parse error" in response.data["detail"]


def test_schedule_later(api):
    when = (timezone.now() + timedelta(hours=2)).isoformat()
    response = schedule(api, kind="demo.count", params={}, run_after=when)
    assert response.status_code == 202
    data = api.get(response.data["status_url"]).data
    assert data["status"] == "waiting" and data["next_attempt_at"] is not None


def test_another_users_job_is_404_and_staff_see_all(api, other_api, staff_api, user):
    job = submit("demo.count", {"n": 1}, owner=user)
    for path in ("", "status", "result"):
        assert other_api.get(f"/api/jobs/{job.id}/{path}").status_code == 404
    assert other_api.post(f"/api/jobs/{job.id}/cancel").status_code == 404
    assert other_api.post(f"/api/jobs/{job.id}/retry").status_code == 404
    assert other_api.get("/api/jobs/").data["count"] == 0
    assert other_api.get("/api/jobs/stats").data["total"] == 0
    assert staff_api.get(f"/api/jobs/{job.id}/status").status_code == 200
    assert staff_api.get("/api/jobs/?owner=seller").data["count"] == 1
    assert api.get("/api/jobs/").data["count"] == 1


def test_unknown_and_malformed_ids_are_404(api):
    assert api.get(f"/api/jobs/{uuid.uuid4()}/status").status_code == 404
    assert api.get("/api/jobs/not-a-uuid/status").status_code == 404
    assert api.get(f"/api/jobs/{uuid.uuid4()}/result").status_code == 404


def test_result_of_a_failed_job_is_409_with_the_error(api, user):
    job = submit("test.permanent", owner=user)
    runner.run_job(job.id)
    response = api.get(f"/api/jobs/{job.id}/result")
    assert response.status_code == 409
    assert response.data["status"] == "failed" and "Campaign 42" in response.data["error"]


def test_cancel_and_retry_through_the_api(api, user):
    job = submit("demo.count", {"n": 5}, owner=user)
    response = api.post(f"/api/jobs/{job.id}/cancel")
    assert response.status_code == 200 and response.data["status"] == "cancelled"
    again = api.post(f"/api/jobs/{job.id}/cancel")
    assert again.status_code == 409 and "already cancelled" in again.data["detail"]
    assert api.get(f"/api/jobs/{job.id}/result").status_code == 409

    retried = api.post(f"/api/jobs/{job.id}/retry", {"from_start": True}, format="json")
    assert retried.status_code == 202 and retried.data["status"] == "queued"
    assert api.post(f"/api/jobs/{job.id}/retry").status_code == 409


def test_cancel_a_running_job_answers_202(api, user):
    job = submit("demo.count", {"n": 5}, owner=user)
    runner.claim(job.id)
    response = api.post(f"/api/jobs/{job.id}/cancel")
    assert response.status_code == 202 and response.data["cancel_requested"] is True


def test_list_filters(api, user):
    submit("demo.count", {"n": 1}, owner=user)
    done = submit("demo.count", {"n": 0}, owner=user)
    runner.run_job(done.id)
    assert api.get("/api/jobs/?status=succeeded").data["count"] == 1
    assert api.get("/api/jobs/?status=queued,succeeded").data["count"] == 2
    assert api.get("/api/jobs/?active=true").data["count"] == 1
    assert api.get("/api/jobs/?kind=demo.count").data["count"] == 2
    bad = api.get("/api/jobs/?status=done")
    assert bad.status_code == 400 and "Unknown status done" in str(bad.data["status"])
    assert api.get("/api/jobs/?active=perhaps").status_code == 400


def test_stats_endpoint(api, user):
    submit("demo.count", {"n": 1}, owner=user)
    submit("demo.count", {"n": 1}, owner=user, run_after=timezone.now() + timedelta(hours=1))
    data = api.get("/api/jobs/stats").data
    assert data["total"] == 2 and data["ready"] == 1 and data["scheduled_later"] == 1
    assert data["by_kind"]["demo.count"]["total"] == 2
    assert "average_duration_seconds" in data and "workers" in data


def test_authentication_is_required_and_tokens_work(user):
    anonymous = APIClient()
    assert anonymous.get("/api/jobs/").status_code in (401, 403)
    assert anonymous.get("/api/jobs/stats").status_code in (401, 403)
    token = anonymous.post("/api/auth/token/", {"username": "seller", "password": "pw-seller-123"})
    assert token.status_code == 200
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.data['token']}")
    assert client.get("/api/jobs/").status_code == 200
    assert Token.objects.get(user=user).key == token.data["token"]


def test_session_auth_works(client, user):
    client.force_login(user)
    assert client.get("/api/jobs/").status_code == 200


def test_openapi_schema_and_local_docs(api, client, user):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in ("/api/jobs/", "/api/jobs/{id}/status", "/api/jobs/{id}/result", "/api/jobs/{id}/cancel",
                 "/api/jobs/{id}/retry", "/api/jobs/stats"):
        assert any(p.rstrip("/") == path.rstrip("/") for p in paths), path
    client.force_login(user)
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    assert "cdn" not in html.lower()


def test_status_reports_named_steps(api, user):
    stopped = submit("test.stepped", {"stop_in_step_2": True}, owner=user)
    runner.run_job(stopped.id)
    step = api.get(f"/api/jobs/{stopped.id}/status").data["step"]
    assert step == {"number": 2, "of": 3, "name": "Count", "names": ["Read", "Count", "Report"]}

    done = submit("test.stepped", {}, owner=user)
    assert api.get(f"/api/jobs/{done.id}/status").data["step"]["number"] is None
    runner.run_job(done.id)
    assert api.get(f"/api/jobs/{done.id}/status").data["step"]["name"] == "Report"

    plain = submit("demo.count", {"n": 0}, owner=user)
    assert api.get(f"/api/jobs/{plain.id}/status").data["step"] is None
