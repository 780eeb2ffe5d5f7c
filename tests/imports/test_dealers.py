"""Dealer imports run at once and answer 200 with the results and the row errors."""

import pytest

from imports.models import Dealer, ImportLog
from queueapp.engine import Job
from tests.imports import files

pytestmark = pytest.mark.django_db

HEADERS = ["Dealer Code", "Name", "Contact", "Email", "Phone", "Address", "City", "Zip", "Country"]


def dealers(count):
    return [[f"D{i:03d}", f"Dealer {i}", f"Person {i}", f"d{i}@example.com", "+49 30 1234", f"Street {i}",
             "Berlin", "10115", "DE"] for i in range(count)]


def post(api, data, name="dealers.xlsx"):
    return api.post("/api/imports/dealers", {"file": files.upload(data, name)}, format="multipart")


def test_dealers_are_imported_synchronously_with_row_errors(api):
    rows = dealers(4)
    rows[1][3] = "not-an-email"
    rows.append(["D000", "Duplicate", "", "", "", "", "", "", ""])
    response = post(api, files.xlsx_bytes(rows, headers=HEADERS))
    assert response.status_code == 200
    body = response.data
    assert body["status"] == "completed" and body["type"] == "DEALERS" and body["job_id"] is None
    assert body["results"] == {"total_rows": 5, "success_count": 3, "created_count": 3, "updated_count": 0,
                               "unchanged_count": 0, "error_count": 2}
    assert [(e["row"], e["column"]) for e in body["errors"]] == [(3, "email"), (6, "code")]
    assert Dealer.objects.get(code="D002").city == "Berlin"
    assert not Job.objects.exists()
    assert not ImportLog.objects.get().file  # nothing kept for later


def test_dealer_reimport_is_unchanged_and_changes_update(api):
    data = files.csv_bytes(dealers(3), headers=HEADERS)
    post(api, data, "dealers.csv")
    again = post(api, data, "dealers.csv").data
    assert again["results"]["unchanged_count"] == 3
    rows = dealers(3)
    rows[0][6] = "Hamburg"
    changed = post(api, files.csv_bytes(rows, headers=HEADERS), "dealers.csv").data
    assert changed["results"]["updated_count"] == 1 and changed["results"]["unchanged_count"] == 2
    assert Dealer.objects.get(code="D000").city == "Hamburg"


def test_dealer_row_cap_and_bad_headers_answer_400(api, settings):
    settings.IMPORTS_DEALERS_MAX_ROWS = 2
    response = post(api, files.xlsx_bytes(dealers(3), headers=HEADERS))
    assert response.status_code == 400 and "at most 2" in response.data["file"][0]
    missing = post(api, files.xlsx_bytes([["x"]], headers=["Phone"]))
    assert missing.status_code == 400 and "missing: code, name" in missing.data["file"][0]
    assert not Dealer.objects.exists()
