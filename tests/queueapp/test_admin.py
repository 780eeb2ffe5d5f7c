import pytest

from queueapp import runner
from queueapp.engine import JobStatus, submit
from queueapp.models import Job
from tests.queueapp import kinds  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def test_changelist_with_filters_and_progress(admin_client, user):
    job = submit("demo.count", {"n": 4}, owner=user)
    Job.objects.filter(id=job.id).update(progress_done=1, progress_total=4)
    page = admin_client.get("/admin/queueapp/job/")
    assert page.status_code == 200
    html = page.content.decode()
    assert '<progress value="25" max="100"' in html and "1/4" in html
    assert "?kind=demo.count" in html
    assert admin_client.get("/admin/queueapp/job/?kind=demo.count&status=queued").status_code == 200
    detail = admin_client.get(f"/admin/queueapp/job/{job.id}/change/")
    assert detail.status_code == 200 and "Created" in detail.content.decode()


def test_cancel_and_retry_actions(admin_client):
    queued = submit("demo.count", {"n": 4})
    failed = submit("test.permanent")
    runner.run_job(failed.id)
    response = admin_client.post("/admin/queueapp/job/", {
        "action": "cancel_jobs", "_selected_action": [str(queued.id), str(failed.id)]}, follow=True)
    html = response.content.decode()
    assert "1 job(s) cancelled" in html and "nothing to cancel" in html
    assert Job.objects.get(id=queued.id).status == JobStatus.CANCELLED

    admin_client.post("/admin/queueapp/job/", {
        "action": "retry_jobs", "_selected_action": [str(queued.id), str(failed.id)]})
    assert set(Job.objects.values_list("status", flat=True)) == {JobStatus.QUEUED}
