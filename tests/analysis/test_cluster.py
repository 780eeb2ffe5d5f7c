"""End to end with a real qcluster process: upload, poll the seed-shaped status, fetch result and report;
and analyze_sales --wait."""

import io
from datetime import date

import pytest
from django.core.management import call_command
from openpyxl import load_workbook

from queueapp.models import Job
from tests.analysis.factories import business_report_us, catalogue, csv_bytes, sums
from tests.analysis.helpers import start
from tests.support import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]

ITEMS = [("B0AAAAAAA1", "Cat mug", 40, 10, "12.99"), ("B0BBBBBBB2", "Dog mug", 30, 5, "9.50"),
         ("B0CCCCCCC3", "Tote", 25, 8, "15.00")]
RECS = catalogue(date(2024, 1, 1), 120, ITEMS)


def test_an_uploaded_analysis_is_run_by_qcluster(api, qcluster, media_root):
    cluster = qcluster(MEDIA_ROOT=str(media_root))
    design = csv_bytes([["ASIN", "Product Type", "Keywords"], ["B0AAAAAAA1", "Mug", "cats"],
                        ["B0BBBBBBB2", "Mug", "dogs"], ["B0CCCCCCC3", "Bag", "cats, bags"]])
    response = start(api, business_report_us(RECS), design)
    assert response.status_code == 202 and response.data["status"] == "queued"
    job_id = response.data["job_id"]
    seen = []

    def finished():
        body = api.get(f"/api/analysis/{job_id}").data
        seen.append((body["status"], body["progress"], body["message"]))
        return body["status"] in ("complete", "failed")

    wait_until(finished, timeout=90, interval=0.05, message=f"the analysis; worker log:\n{cluster.output()}")
    assert seen[-1][0] == "complete" and seen[-1][1] == 100, seen[-1]
    assert {s for s, _, _ in seen} <= {"queued", "processing", "complete"}
    result = api.get(f"/api/jobs/{job_id}/result")
    assert result.status_code == 200
    assert result.data["result"]["totals"]["revenue"] == sums(RECS)["revenue"]
    assert result.data["result"]["keywords"]["by_keyword"][0]["keyword"] == "cats"
    report = api.get(f"/api/analysis/{job_id}/report.xlsx")
    assert report.status_code == 200
    assert "Trends" in load_workbook(io.BytesIO(b"".join(report.streaming_content))).sheetnames


def test_analyze_sales_wait_follows_the_job_to_its_summary(qcluster, media_root, tmp_path):
    cluster = qcluster(MEDIA_ROOT=str(media_root))
    revenue = tmp_path / "report.csv"
    revenue.write_bytes(business_report_us(RECS))
    out = io.StringIO()
    try:
        call_command("analyze_sales", revenue=str(revenue), asin="B0AAAAAAA1", marketplace="US", wait=True,
                     timeout=90, stdout=out)
    except Exception:
        print(cluster.output())
        raise
    text = out.getvalue()
    job = Job.objects.get()
    assert job.status == "succeeded"
    assert "Step 1 of 5" in text or "Analysis complete" in text
    assert f"Revenue USD {sums(RECS)['revenue']}" in text
    assert "B0AAAAAAA1: revenue USD" in text
    assert f"Report: {media_root}" in text and text.rstrip().endswith("report.xlsx")
