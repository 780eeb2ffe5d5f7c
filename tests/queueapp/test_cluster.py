"""Background execution by a real qcluster process, including a crash by SIGKILL."""

import time

import pytest

from queueapp import dispatcher
from queueapp.engine import JobStatus
from queueapp.models import Job
from tests.support import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]


def job_row(job_id):
    return Job.objects.get(id=job_id)


def test_a_job_submitted_through_the_api_is_run_by_qcluster(api, qcluster):
    cluster = qcluster()
    response = api.post("/api/jobs/", {"kind": "demo.count", "params": {"n": 5, "delay": 0.05}}, format="json")
    assert response.status_code == 202
    job_id = response.data["job_id"]

    wait_until(lambda: job_row(job_id).status == JobStatus.SUCCEEDED, timeout=60,
               message=f"job to succeed; worker log:\n{cluster.output()}")
    status = api.get(f"/api/jobs/{job_id}/status").data
    assert status["progress_done"] == 5 and status["percentage"] == 100
    assert api.get(f"/api/jobs/{job_id}/result").data["result"] == {"counted": 5, "resumed_from": 0}
    types = [e["type"] for e in api.get(f"/api/jobs/{job_id}/").data["events"]]
    assert types[:2] == ["created", "started"] and types[-1] == "succeeded"
    assert types.count("progress") == 5


def test_a_killed_worker_job_is_requeued_and_resumes_from_its_checkpoint(api, qcluster):
    cluster = qcluster(JOBS_LEASE_SECONDS=2)
    response = api.post("/api/jobs/", {"kind": "demo.count", "params": {"n": 40, "delay": 0.05}},
                        format="json")
    job_id = response.data["job_id"]
    wait_until(lambda: (job_row(job_id).checkpoint or {}).get("counted", 0) >= 8, timeout=60,
               message=f"the job to get going; worker log:\n{cluster.output()}")

    cluster.kill()  # SIGKILL to the whole process group: nothing gets to report
    crashed = job_row(job_id)
    assert crashed.status == JobStatus.RUNNING and crashed.attempts == 1
    counted_at_crash = crashed.checkpoint["counted"]

    # Until the lease runs out the job still looks busy; then the tick takes it back.
    assert dispatcher.tick()["requeued"] == 0
    time.sleep(2.5)
    assert dispatcher.tick()["requeued"] == 1
    requeued = job_row(job_id)
    assert requeued.status == JobStatus.QUEUED and "stopped responding" in requeued.error

    restarted = qcluster(JOBS_LEASE_SECONDS=2)
    wait_until(lambda: job_row(job_id).status == JobStatus.SUCCEEDED, timeout=60,
               message=f"the job to finish after the restart; worker log:\n{restarted.output()}")
    done = job_row(job_id)
    assert done.attempts == 2
    assert done.result["counted"] == 40
    assert done.result["resumed_from"] >= counted_at_crash
    types = list(done.events.values_list("type", flat=True))
    assert types.count("started") == 2 and "lease_expired" in types


def test_cancel_a_running_job_through_the_api(api, qcluster):
    cluster = qcluster()
    job_id = api.post("/api/jobs/", {"kind": "demo.count", "params": {"n": 200, "delay": 0.05}},
                      format="json").data["job_id"]
    wait_until(lambda: job_row(job_id).progress_done >= 3, timeout=60,
               message=f"the job to run; worker log:\n{cluster.output()}")
    assert api.post(f"/api/jobs/{job_id}/cancel").status_code == 202
    wait_until(lambda: job_row(job_id).status == JobStatus.CANCELLED, timeout=30, message="the cancel")
    job = job_row(job_id)
    assert job.progress_done < 200
    assert api.get(f"/api/jobs/{job_id}/result").status_code == 409
