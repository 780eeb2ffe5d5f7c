"""A real qcluster runs a product import; SIGKILLed mid-import, the job resumes from its last committed
chunk and the final counts are exact, with no product or history record duplicated or lost."""

import time

import pytest

from imports.models import ImportLog, PriceRecord, Product, StockRecord
from queueapp import dispatcher
from queueapp.engine import Job, JobStatus
from tests.imports import files
from tests.support import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]

ROWS = 6000


def test_killed_worker_resumes_the_import_exactly(api, qcluster):
    rows = files.product_rows(ROWS) + [["SKU-00010", "duplicate", "", "", "", 1, 1, None]]
    data = files.csv_bytes(rows)
    cluster = qcluster(JOBS_LEASE_SECONDS=2, IMPORTS_CHUNK_ROWS=200)
    response = api.post("/api/imports/products", {"file": files.upload(data, "products.csv")}, format="multipart")
    assert response.status_code == 202
    log_id, job_id = response.data["import_id"], response.data["job_id"]
    wait_until(lambda: (Job.objects.get(pk=job_id).checkpoint or {}).get("last_row", 0) >= 600, timeout=90,
               interval=0.02, message=f"the import to get going; worker log:\n{cluster.output()}")
    cluster.kill()
    crashed = ImportLog.objects.get(pk=log_id)
    assert crashed.import_status == ImportLog.Status.PROCESSING and 0 < crashed.processed_rows < ROWS
    assert Product.objects.count() == crashed.created_count  # committed with its checkpoint, nothing more

    time.sleep(2.5)
    assert dispatcher.tick()["requeued"] == 1
    restarted = qcluster(JOBS_LEASE_SECONDS=2, IMPORTS_CHUNK_ROWS=200)
    wait_until(lambda: ImportLog.objects.get(pk=log_id).import_status == ImportLog.Status.COMPLETED, timeout=120,
               message=f"the import to finish; worker log:\n{restarted.output()}")
    done = ImportLog.objects.get(pk=log_id)
    assert (done.processed_rows, done.created_count, done.error_count, done.total_rows) == (ROWS + 1, ROWS, 1, ROWS + 1)
    assert Product.objects.count() == PriceRecord.objects.count() == StockRecord.objects.count() == ROWS
    assert Job.objects.get(pk=job_id).attempts == 2
    assert any("Resuming after row" in e.message for e in Job.objects.get(pk=job_id).events.all())
    status = api.get(f"/api/imports/{log_id}").data
    assert status["status"] == "completed" and status["progress"]["percentage"] == 100
