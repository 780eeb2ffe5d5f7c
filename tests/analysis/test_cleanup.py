"""Uploads and reports go with their job: the retention cleanup (JOBS_RETENTION_DAYS, 7 by default)
deletes finished jobs through the ORM, and the analysis app removes their folders."""

import io
from datetime import date, timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from analysis import services
from analysis.models import SalesAnalysis
from queueapp.models import Job
from tests.analysis.factories import business_report_us, catalogue
from tests.analysis.helpers import run

pytestmark = pytest.mark.django_db

REVENUE = business_report_us(catalogue(date(2024, 3, 1), 3, [("B0AAAAAAA1", "Mug", 20, 10, "9.99")]))


def folder_of(job_id, media_root):
    return media_root / SalesAnalysis.objects.get(job_id=job_id).storage


def test_the_seven_day_cleanup_deletes_old_analyses_with_their_files(api, media_root, settings,
                                                                     django_capture_on_commit_callbacks):
    assert settings.JOBS_RETENTION_DAYS == 7
    old_id, _ = run(api, REVENUE)
    young_id, _ = run(api, REVENUE)
    old_folder, young_folder = folder_of(old_id, media_root), folder_of(young_id, media_root)
    assert sorted(p.name for p in old_folder.iterdir()) == ["report.xlsx", "revenue.csv"]
    Job.objects.filter(id=old_id).update(finished_at=timezone.now() - timedelta(days=8))
    Job.objects.filter(id=young_id).update(finished_at=timezone.now() - timedelta(days=6))

    with django_capture_on_commit_callbacks(execute=True):
        call_command("cleanup_jobs")

    assert not Job.objects.filter(id=old_id).exists() and not SalesAnalysis.objects.filter(job_id=old_id).exists()
    assert not old_folder.exists()
    assert young_folder.exists() and (young_folder / "report.xlsx").exists()
    assert api.get(f"/api/analysis/{old_id}").status_code == 404


def test_a_failed_analysis_is_cleaned_up_too(api, media_root, django_capture_on_commit_callbacks):
    from tests.analysis.factories import csv_bytes
    from tests.analysis.helpers import start
    from queueapp import runner

    bad = csv_bytes([["ASIN", "Units Ordered", "Ordered Product Sales"], ["B0AAAAAAA1", "?", "$1.00"]])
    job_id = start(api, bad).data["job_id"]
    runner.run_job(job_id)
    folder = folder_of(job_id, media_root)
    assert Job.objects.get(id=job_id).status == "failed" and folder.exists()
    Job.objects.filter(id=job_id).update(finished_at=timezone.now() - timedelta(days=8))
    with django_capture_on_commit_callbacks(execute=True):
        call_command("cleanup_jobs")
    assert not folder.exists()


def test_files_stay_when_the_deletion_is_rolled_back(api, media_root):
    from django.db import transaction

    job_id, _ = run(api, REVENUE)
    folder = folder_of(job_id, media_root)

    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        with transaction.atomic():
            Job.objects.filter(id=job_id).delete()
            raise Abort
    assert folder.exists() and Job.objects.filter(id=job_id).exists()


def test_orphan_folders_are_removed_but_not_those_of_jobs(api, media_root):
    job_id, _ = run(api, REVENUE)
    kept = folder_of(job_id, media_root)
    orphan = media_root / "analysis" / ("0" * 32)
    orphan.mkdir(parents=True)
    (orphan / "revenue.csv").write_text("x")
    assert services.remove_orphan_folders(older_than_hours=24) == 0  # too young: may be an upload in progress
    out = io.StringIO()
    call_command("cleanup_analysis_files", older_than_hours=0, stdout=out)
    assert out.getvalue().strip() == "Removed 1 orphan analysis folder(s)."
    assert not orphan.exists() and kept.exists()
