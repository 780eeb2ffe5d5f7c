from datetime import date

import pytest

from tests.analysis.factories import business_report_us, catalogue
from tests.analysis.helpers import run

pytestmark = pytest.mark.django_db


def test_staff_see_analyses_in_the_admin_with_their_report(api, client, staff_user):
    job_id, _ = run(api, business_report_us(catalogue(date(2024, 3, 1), 3, [("B0AAAAAAA1", "Mug", 20, 10, "9.99")])))
    client.force_login(staff_user)
    listing = client.get("/admin/analysis/salesanalysis/")
    assert listing.status_code == 200
    page = listing.content.decode()
    assert str(job_id) in page and "B0AAAAAAA1" in page and f"/api/analysis/{job_id}/report.xlsx" in page
    detail = client.get(f"/admin/analysis/salesanalysis/{job_id}/change/")
    assert detail.status_code == 200 and "BusinessReport-3-31-24.csv" in detail.content.decode()
    assert client.get("/admin/analysis/salesanalysis/add/").status_code == 403
