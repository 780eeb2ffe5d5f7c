"""manage.py analyze_sales --revenue FILE [--design FILE] --asin X --marketplace US [--wait]"""

import io
from datetime import date

import pytest
from django.core.management import CommandError, call_command

from analysis.models import SalesAnalysis
from queueapp.models import Job
from tests.analysis.factories import business_report_us, catalogue, csv_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def files(tmp_path):
    revenue = tmp_path / "BusinessReport.csv"
    revenue.write_bytes(business_report_us(catalogue(date(2024, 3, 1), 5, [("B0AAAAAAA1", "Mug", 20, 10, "9.99")])))
    design = tmp_path / "designs.csv"
    design.write_bytes(csv_bytes([["ASIN", "Product Type", "Tags"], ["B0AAAAAAA1", "Mug", "cats"]]))
    return revenue, design


def test_queues_an_analysis_like_the_api(files, user):
    revenue, design = files
    out = io.StringIO()
    call_command("analyze_sales", revenue=str(revenue), design=str(design), asin="B0AAAAAAA1",
                 marketplace="US", user="seller", stdout=out)
    job = Job.objects.get()
    assert job.kind == "analysis.sales" and job.status == "queued" and job.owner == user
    assert f"Queued sales analysis {job.id} of B0AAAAAAA1 on Amazon US." in out.getvalue()
    assert f"GET /api/analysis/{job.id}" in out.getvalue()
    analysis = SalesAnalysis.objects.get()
    assert analysis.revenue_filename == "BusinessReport.csv" and analysis.design_filename == "designs.csv"


def test_bad_input_is_an_error_naming_the_field(files, tmp_path):
    revenue, _ = files
    bad = tmp_path / "bad.csv"
    bad.write_bytes(csv_bytes([["ASIN", "Sessions"], ["B0AAAAAAA1", "3"]]))
    with pytest.raises(CommandError) as err:
        call_command("analyze_sales", revenue=str(bad), asin="https://amzn.to/x", marketplace="XX")
    message = str(err.value)
    assert "asin_or_url: amzn.to short links cannot be resolved" in message
    assert "marketplace: Unknown marketplace 'XX'" in message
    assert 'revenue_csv: revenue_csv is missing required column(s): "Units Ordered"' in message
    assert Job.objects.count() == 0


def test_missing_file(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        call_command("analyze_sales", revenue=str(tmp_path / "nope.csv"), asin="B0AAAAAAA1")


def test_unknown_user(files):
    with pytest.raises(CommandError, match="No user 'ghost'"):
        call_command("analyze_sales", revenue=str(files[0]), asin="B0AAAAAAA1", user="ghost")
