"""The pages through Django's test client: access rules, what they render, and that bad input never 500s."""

import re
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from queueapp import services
from queueapp.models import Job, JobEvent, JobStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_for(client):
    def log_in(user):
        client.force_login(user)
        return client
    return log_in


def finished(job, status=JobStatus.SUCCEEDED, *, seconds=12, result=None, error=""):
    now = timezone.now()
    Job.objects.filter(id=job.id).update(
        status=status, started_at=now - timedelta(seconds=seconds), finished_at=now, result=result, error=error,
        progress_done=job.params.get("n", 0), progress_total=job.params.get("n", 0),
    )
    job.refresh_from_db()
    return job


@pytest.mark.parametrize("path", ["/", "/start/demo/", f"/jobs/{uuid.uuid4()}/"])
def test_pages_require_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={path}"


def test_login_page_logs_in_and_goes_to_the_dashboard(client, user):
    page = client.get("/login/")
    assert page.status_code == 200
    assert b'<label for="id_username">Username</label>' in page.content
    response = client.post("/login/", {"username": "seller", "password": "pw-seller-123"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200


def test_a_wrong_password_is_explained_on_the_login_page(client, user):
    response = client.post("/login/", {"username": "seller", "password": "nope"})
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content


def test_logout_is_a_post_and_ends_the_session(client_for, user):
    client = client_for(user)
    assert client.get("/logout/").status_code == 405
    response = client.post("/logout/")
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert client.get("/").status_code == 302


def test_dashboard_lists_running_waiting_and_recent_jobs_with_queue_figures(client_for, user):
    running = services.submit("demo.count", {"n": 10}, owner=user)
    Job.objects.filter(id=running.id).update(status=JobStatus.RUNNING, started_at=timezone.now(),
                                             progress_done=4, progress_total=10, message="Counted 4 of 10")
    later = services.submit("demo.count", {"n": 5}, owner=user, run_after=timezone.now() + timedelta(hours=1))
    done = finished(services.submit("demo.count", {"n": 3}, owner=user))
    failed = finished(services.submit("demo.count", {"n": 2}, owner=user), JobStatus.FAILED, error="Boom: disk full")

    page = client_for(user).get("/")
    assert page.status_code == 200
    ctx = page.context
    assert [row["job"].id for row in ctx["running"]] == [running.id]
    assert [row["job"].id for row in ctx["waiting"]] == [later.id]
    assert {row["job"].id for row in ctx["recent_rows"]} == {done.id, failed.id}
    assert ctx["stats"]["scheduled_later"] == 1 and ctx["stats"]["failed_last_24h"] == 1
    html = page.content.decode()
    assert 'aria-valuenow="40"' in html and "Counted 4 of 10" in html
    assert "Boom: disk full" in html
    assert f'href="/jobs/{running.id}/"' in html
    assert 'data-figure="failed_last_24h">1<' in html
    assert 'data-figure="scheduled_later">1<' in html
    # Durations: the finished job ran 12 s.
    assert "12.0 s" in html


def test_dashboard_filters_by_kind_and_status_and_ignores_unknown_values(client_for, user):
    queued = services.submit("demo.count", {"n": 1}, owner=user)
    done = finished(services.submit("demo.count", {"n": 1}, owner=user))
    client = client_for(user)

    page = client.get("/", {"status": "succeeded"})
    assert [row["job"].id for row in page.context["recent_rows"]] == [done.id]
    assert page.context["waiting"] == []

    page = client.get("/", {"kind": "demo.count", "status": "queued"})
    assert [row["job"].id for row in page.context["waiting"]] == [queued.id]
    assert page.context["recent_rows"] == []

    page = client.get("/", {"kind": "no.such", "status": "bogus", "page": "x"})
    assert page.status_code == 200
    assert "There is no job kind &#x27;no.such&#x27;" in page.content.decode()
    assert "There is no status &#x27;bogus&#x27;" in page.content.decode()
    assert len(page.context["recent_rows"]) == 1


def test_dashboard_warns_clearly_when_no_worker_is_alive(client_for, user):
    html = client_for(user).get("/").content.decode()
    assert 'data-workers="none"' in html
    assert "No worker is running." in html


def test_users_see_only_their_own_jobs_and_staff_see_all(client_for, user, other_user, staff_user):
    mine = services.submit("demo.count", {"n": 1}, owner=user)
    theirs = services.submit("demo.count", {"n": 1}, owner=other_user)

    client = client_for(user)
    ids = {row["job"].id for row in client.get("/").context["waiting"]}
    assert ids == {mine.id}
    assert client.get(f"/jobs/{mine.id}/").status_code == 200
    assert client.get(f"/jobs/{theirs.id}/").status_code == 404

    staff = client_for(staff_user)
    assert {row["job"].id for row in staff.get("/").context["waiting"]} == {mine.id, theirs.id}
    page = staff.get(f"/jobs/{theirs.id}/")
    assert page.status_code == 200 and "owner other" in page.content.decode()


@pytest.mark.parametrize("path", [f"/jobs/{uuid.uuid4()}/", "/jobs/not-a-uuid/", "/jobs/123/"])
def test_unknown_or_malformed_job_ids_answer_404(client_for, user, path):
    assert client_for(user).get(path).status_code == 404


def test_job_page_shows_progress_history_errors_and_controls(client_for, user):
    job = services.submit("demo.count", {"n": 50, "delay": 0.1}, owner=user)
    Job.objects.filter(id=job.id).update(status=JobStatus.RUNNING, started_at=timezone.now() - timedelta(seconds=10),
                                         progress_done=20, progress_total=50, message="Counted 20 of 50",
                                         attempts=2, error="worker stopped responding")
    JobEvent.objects.create(job=job, type=JobEvent.Type.LEASE_EXPIRED, message="The worker stopped responding")
    page = client_for(user).get(f"/jobs/{job.id}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'aria-valuenow="40"' in html
    assert "20 of 50" in html and "Counted 20 of 50" in html
    assert "You can close this tab" in html
    assert '<dd data-field="rate">2.0 /s</dd>' in html  # 20 done in 10 s
    assert re.search(r'<dd data-field="eta">15\.\d s</dd>', html)  # 30 left at 2 /s
    assert "2 of 3" in html  # attempt
    assert "The worker stopped responding" in html  # the error table
    assert "Created" in html  # the history
    # Cancel is offered, retry is not; the page's script gets the status endpoint to poll.
    assert 'data-action="cancel">' in html
    assert 'data-action="retry" hidden' in html
    assert f'"status_url": "/api/jobs/{job.id}/status"' in html


def test_job_page_of_a_succeeded_job_shows_its_result_and_stops_offering_cancel(client_for, user):
    job = finished(services.submit("demo.count", {"n": 3}, owner=user),
                   result={"counted": 3, "report_url": "/api/analysis/x/report",
                           "evil_url": "javascript:alert(1)", "other_url": "//elsewhere.example/x"})
    html = client_for(user).get(f"/jobs/{job.id}/").content.decode()
    assert f'href="/api/jobs/{job.id}/result"' in html
    assert '&quot;counted&quot;: 3' in html
    assert '<a href="/api/analysis/x/report">Report</a>' in html
    assert 'href="javascript:' not in html and 'href="//elsewhere' not in html
    assert 'data-action="cancel" hidden' in html
    assert 'data-when="active" hidden' in html


def test_job_page_of_a_failed_job_offers_retry_and_shows_the_error(client_for, user):
    job = finished(services.submit("demo.count", {"n": 3}, owner=user), JobStatus.FAILED,
                   error="PermanentError: the file is gone")
    html = client_for(user).get(f"/jobs/{job.id}/").content.decode()
    assert "The job failed." in html and "the file is gone" in html
    assert 'data-action="retry">' in html and 'data-action="retry-from-start">' in html


def test_job_page_pages_its_history_and_errors(client_for, user):
    job = services.submit("demo.count", {"n": 3}, owner=user)
    JobEvent.objects.bulk_create(
        [JobEvent(job=job, type=JobEvent.Type.RETRY_SCHEDULED, message=f"Attempt {i} failed") for i in range(45)]
    )
    client = client_for(user)
    first = client.get(f"/jobs/{job.id}/")
    assert first.context["errors"].paginator.num_pages == 3
    assert first.context["history"].paginator.count == 46
    assert f'href="?errors=2"' in first.content.decode()
    last = client.get(f"/jobs/{job.id}/", {"errors": 3, "history": 2})
    assert len(last.context["errors"].object_list) == 5
    assert 'href="?errors=2&amp;history=2"' in last.content.decode()
    assert client.get(f"/jobs/{job.id}/", {"errors": "zz", "history": -4}).status_code == 200


def test_demo_start_page_has_labelled_fields_posting_to_the_jobs_api(client_for, user):
    html = client_for(user).get("/start/demo/").content.decode()
    assert 'data-api="/api/jobs/"' in html
    assert '<label for="demo-n">' in html and 'name="params.n"' in html
    assert '<label for="demo-delay">' in html and 'name="params.delay"' in html


def test_static_files_are_served_by_whitenoise(client):
    response = client.get("/static/pages/pages.js")
    assert response.status_code == 200
    assert b"refreshSections" in b"".join(response.streaming_content)
