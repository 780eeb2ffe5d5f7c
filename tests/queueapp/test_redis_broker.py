"""REDIS_URL switches the executor to the Redis broker (and the cache to Redis): a job still runs end to end."""

import os
import subprocess
import sys
import uuid

import pytest
import redis

from queueapp.engine import JobStatus
from queueapp.models import Job
from tests.support import ROOT, Process, subprocess_env

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def redis_url():
    try:
        redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis at {REDIS_URL} is unreachable under CI: {exc}")
        pytest.skip(f"Redis at {REDIS_URL} is unreachable: {exc}")
    return REDIS_URL


def test_a_job_runs_through_the_redis_broker(redis_url, tmp_path):
    env = {"REDIS_URL": redis_url, "Q_CLUSTER_NAME": f"jobsite-test-{uuid.uuid4().hex[:8]}"}
    cluster = Process([sys.executable, "manage.py", "qcluster"], tmp_path / "qcluster.log", **env)
    try:
        submitted = subprocess.run(
            [sys.executable, "manage.py", "jobs", "submit", "demo.count", "--params",
             '{"n": 3, "delay": 0.05}', "--wait"],
            cwd=ROOT, env=subprocess_env(**env), capture_output=True, text=True, timeout=90,
        )
        assert submitted.returncode == 0, submitted.stderr + cluster.output()
        assert '"counted": 3' in submitted.stdout
        job = Job.objects.get()
        assert job.status == JobStatus.SUCCEEDED and job.progress_done == 3
        probe = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c",
             "from django_q.brokers import get_broker; from django.core.cache import caches; "
             "print(type(get_broker()).__name__, type(caches['default']).__name__)"],
            cwd=ROOT, env=subprocess_env(**env), capture_output=True, text=True, timeout=60,
        )
        assert probe.stdout.strip().splitlines()[-1].split() == ["Redis", "RedisCache"], probe.stderr
    finally:
        cluster.kill()
        redis.from_url(redis_url).delete(env["Q_CLUSTER_NAME"])
