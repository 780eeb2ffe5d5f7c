"""The figures, against expected values computed from the records themselves (factories.sums & co.) or by
hand in the comments, for several real-world export formats."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from tests.analysis.factories import (
    Rec, business_report_de, business_report_us, by_item, by_month, by_week, catalogue, csv_bytes, pct, q, sums,
    uk_money,
)
from tests.analysis.helpers import run

pytestmark = pytest.mark.django_db

METRICS = ("revenue", "units", "sessions", "page_views", "conversion_percent", "average_price")
ITEMS = [
    ("B0AAAAAAA1", "Funny Cat T-Shirt", 40, 10, "19.99"),
    ("B0BBBBBBB2", "Dog Dad Hoodie", 60, 2, "34.50"),
    ("B0CCCCCCC3", "Retro Sunset Mug", 15, 12, "12.00"),
    ("B0DDDDDDD4", "Coffee Cat Tote", 25, 6, "15.25"),
    ("B0EEEEEEE5", "Vintage Bike Poster", 8, 20, "24.00"),
    ("B0FFFFFFF6", "Plain Sticker", 30, 1, "2.49"),
]
# Monday 26 Feb 2024 to Sunday 7 Apr 2024: six ISO weeks, parts of three months (2024 is a leap year).
RECS = catalogue(date(2024, 2, 26), 42, ITEMS)


def pick(row, keys=METRICS):
    return {k: row[k] for k in keys}


def check_catalogue_figures(result, recs, focus="B0AAAAAAA1"):
    assert pick(result["totals"]) == sums(recs)
    assert result["totals"]["items"] == len({r.asin for r in recs})
    assert result["period"] == {"first_date": "2024-02-26", "last_date": "2024-04-07", "days": 42,
                                "days_with_data": 42}
    weekly = result["trends"]["weekly"]
    assert [dict(pick(w, ("period", "start", *METRICS))) for w in weekly] == by_week(recs)
    assert all(not w["partial"] for w in weekly)
    monthly = result["trends"]["monthly"]
    assert [pick(m, ("period", *METRICS)) for m in monthly] == by_month(recs)
    assert [(m["days_covered"], m["partial"]) for m in monthly] == [(4, True), (31, False), (7, True)]
    expected_items = by_item(recs)
    assert {i["asin"]: pick(i) for i in result["items"]} == expected_items

    # The focus item against the catalogue.
    f = result["focus"]
    mine = [r for r in recs if r.asin == focus]
    assert f["found"] and pick(f) == sums(mine)
    total_revenue = sum(r.revenue for r in recs)
    assert f["share_of_revenue_percent"] == str(pct(sum(r.revenue for r in mine), total_revenue))
    assert f["share_of_sessions_percent"] == str(pct(sum(r.sessions for r in mine), sum(r.sessions for r in recs)))
    ranked = sorted(expected_items, key=lambda a: (-Decimal(expected_items[a]["revenue"]), a))
    assert f["rank_by_revenue"] == ranked.index(focus) + 1 and f["items_in_catalogue"] == 6
    catalogue_conv = Decimal(sum(r.units for r in recs)) / sum(r.sessions for r in recs)
    focus_conv = Decimal(sum(r.units for r in mine)) / sum(r.sessions for r in mine)
    assert f["conversion_vs_catalogue_points"] == str(q((focus_conv - catalogue_conv) * 100))
    assert [pick(w, ("period", *METRICS)) for w in f["weekly"]] == [
        {k: v for k, v in w.items() if k != "start"} for w in by_week(mine)]

    # Momentum: 42 days is less than 56, so the last 21 days against the 21 before.
    m = result["trends"]["momentum"]
    cut = date(2024, 4, 7) - timedelta(days=20)
    recent = [r for r in recs if r.day >= cut]
    previous = [r for r in recs if r.day < cut]
    assert m["window_days"] == 21 and m["recent"]["start"] == "2024-03-18" and m["previous"]["start"] == "2024-02-26"
    assert pick(m["recent"]) == sums(recent) and pick(m["previous"]) == sums(previous)
    r_rev, p_rev = sum(r.revenue for r in recent), sum(r.revenue for r in previous)
    assert m["revenue_change_percent"] == str(pct(r_rev - p_rev, p_rev))


def test_us_business_report_by_date(api):
    _, result = run(api, business_report_us(RECS))
    check_catalogue_figures(result, RECS)
    assert result["currency"] == "USD" and result["warnings"] == []
    revenue_in = result["inputs"]["revenue_csv"]
    assert revenue_in["rows_used"] == len(RECS) and revenue_in["rows_rejected"] == 0
    assert revenue_in["number_format"] == "1,234.56" and revenue_in["date_order"] == "MDY"


def test_german_export_gives_the_same_figures(api):
    """Semicolons, 1.234,56 €, 31.03.2024, German column names, Windows-1252, on the DE marketplace."""
    recs = [Rec(r.day, r.asin, r.title.replace("Mug", "Tasse für Kaffee"), r.sessions, r.page_views, r.units,
                r.revenue) for r in RECS]
    _, result = run(api, business_report_de(recs), marketplace="DE")
    check_catalogue_figures(result, recs)
    assert result["currency"] == "EUR"
    assert result["inputs"]["revenue_csv"]["encoding"] == "cp1252"
    assert result["inputs"]["revenue_csv"]["delimiter"] == ";"
    assert any(i["title"] == "Retro Sunset Tasse für Kaffee" for i in result["items"])


def test_a_small_european_file_by_hand(api):
    rows = [["Datum", "ASIN", "Titel", "Sitzungen", "Bestellte Einheiten", "Umsatz"],
            ["01.03.2024", "B0AAAAAAA1", "Tasse", "1.200", "1", "1.234,56 €"],
            ["02.03.2024", "B0AAAAAAA1", "Tasse", "800", "2", "2.000,00 €"],
            ["02.03.2024", "B0BBBBBBB2", "Becher", "10", "3", "15,5 €"]]
    _, result = run(api, csv_bytes(rows, delimiter=";"), marketplace="DE")
    # 1234.56 + 2000.00 + 15.50 = 3250.06; 6 units; 2010 sessions; 6/2010 = 0.30 %; 3250.06/6 = 541.68
    assert pick(result["totals"], ("revenue", "units", "sessions", "conversion_percent", "average_price")) == {
        "revenue": "3250.06", "units": 6, "sessions": 2010, "conversion_percent": "0.30", "average_price": "541.68"}
    assert result["totals"]["page_views"] is None  # no page-view column: unknown, not zero


UK_ITEMS = [  # asin, title, sessions, units, price
    ("B0AAAAAAA1", "Cat Lover Tee", 1000, 100, "20.00"),
    ("B0BBBBBBB2", "Dog Dad Tee", 900, 9, "25.00"),
    ("B0CCCCCCC3", "Retro Cat Hoodie", 500, 40, "15.00"),
    ("B0DDDDDDD4", "Coffee Cat Mug", 100, 30, "12.00"),
    ("B0EEEEEEE5", "Dog Mug", 200, 16, "10.00"),
    ("B0FFFFFFF6", "Bike Poster", 50, 4, "30.00"),
    ("B0GGGGGGG7", "Sticker", 10, 5, "8.00"),
]


def uk_period_report():
    """A per-period report (no date column), UK: '£1,234.56'."""
    rows = [["ASIN", "Title", "Sessions", "Page Views", "Units Ordered", "Ordered Product Sales"]]
    for asin, title, sessions, units, price in UK_ITEMS:
        rows.append([asin, title, f"{sessions:,}", f"{sessions * 2:,}", str(units), uk_money(Decimal(price) * units)])
    return csv_bytes(rows)


def test_rankings_listing_problems_and_promotion_candidates(api):
    _, result = run(api, uk_period_report(), marketplace="UK")
    r = result["rankings"]
    # Revenue: A 2000, B 225, C 600, D 360, E 160, F 120, G 40.
    assert [i["asin"][-1] for i in r["top_by_revenue"]] == ["1", "3", "4", "2", "5", "6", "7"]
    assert r["bottom_by_revenue"] == []  # seven items all fit in the top ten
    assert [i["asin"][-1] for i in r["top_by_units"]] == ["1", "3", "4", "5", "2", "7", "6"]
    # G has 10 sessions, under ANALYSIS_MIN_SESSIONS (20): left out of conversion rankings.
    assert [i["asin"][-1] for i in r["top_by_conversion"]] == ["4", "1", "3", "5", "6", "2"]
    t = r["thresholds"]
    # Catalogue: 204 units / 2760 sessions = 7.39 %. Sessions of the six items with 20+: 50 100 200 500 900 1000;
    # nearest rank: 75th -> 5th value 900, 50th -> 3rd value 200.
    assert (t["high_traffic_sessions"], t["low_traffic_sessions"]) == (900, 200)
    assert (t["catalogue_conversion_percent"], t["low_conversion_percent"], t["high_conversion_percent"]) == (
        "7.39", "3.70", "11.09")
    # B: 900 sessions, 1 % -> at 7.39 % it would sell 900*204/2760 = 66.52 units, 57.52 more, * £25 = £1438.04.
    assert [(p["asin"], p["missed_units"], p["missed_revenue"]) for p in r["listing_problems"]] == [
        ("B0BBBBBBB2", "57.5", "1438.04")]
    # D: 100 sessions at 30 %; 800 more sessions converting halfway between 30 % and 204/2760:
    # 800 * (0.30 + 0.0739130) / 2 = 149.57 more units * £12 = £1794.78.
    assert [(c["asin"], c["extra_units_at_target"], c["extra_revenue_at_target"]) for c in
            r["promotion_candidates"]] == [("B0DDDDDDD4", "149.6", "1794.78")]
    assert result["trends"]["available"] is False and result["period"] is None
    assert "no date column" in " ".join(result["warnings"])

    recs = result["recommendations"]
    assert [(x["rank"], x["type"], x.get("asin"), x["estimated_revenue_impact"]) for x in recs] == [
        (1, "promote", "B0DDDDDDD4", "1794.78"),
        (2, "fix_listing", "B0BBBBBBB2", "1438.04"),
        (3, "reduce_concentration", "B0AAAAAAA1", None),  # A: 2000 / 3505 = 57.06 % of revenue
    ]
    assert "57.06%" in recs[2]["why"]
    assert "900 sessions but 1.00% conversion against 7.39%" in recs[1]["why"]


def test_keyword_and_design_performance(api):
    design = csv_bytes([
        ["ASIN", "Design Name", "Type", "Tags"],
        ["B0AAAAAAA1", "Cat Lover", "T-Shirt", "cats, funny"],
        ["B0BBBBBBB2", "Dog Dad", "T-Shirt", "dogs | Funny"],
        ["B0CCCCCCC3", "Retro Cat", "Hoodie", "#Retro; Cats"],
        ["B0DDDDDDD4", "Coffee Cat", "Mug", "cats,coffee"],
        ["B0EEEEEEE5", "Dog Mug", "Mug", "dogs"],
        ["B0HHHHHHH8", "Unsold", "Mug", "cats"],
        ["B0AAAAAAA1", "Cat Lover (navy)", "T-Shirt", "vintage"],
    ])
    _, result = run(api, uk_period_report(), design, marketplace="UK")
    revenue = {asin: Decimal(price) * units for asin, _, _, units, price in UK_ITEMS}
    units = {asin: u for asin, _, _, u, _ in UK_ITEMS}
    sessions = {asin: s for asin, _, s, _, _ in UK_ITEMS}
    tags = {"B0AAAAAAA1": ["cats", "funny", "vintage"], "B0BBBBBBB2": ["dogs", "funny"],
            "B0CCCCCCC3": ["retro", "cats"], "B0DDDDDDD4": ["cats", "coffee"], "B0EEEEEEE5": ["dogs"],
            "B0HHHHHHH8": ["cats"]}
    k = result["keywords"]
    assert (k["designs"], k["designs_matched_in_sales"], k["designs_without_sales"]) == (6, 5, 1)
    # F and G sold without a design row: 120 + 40.
    assert (k["sales_items_without_design"], k["sales_revenue_without_design"]) == (2, "160.00")
    assert k["revenue_per_design"] == str(q(sum(revenue.get(a, 0) for a in tags) / 6))
    by_keyword = {row["keyword"]: row for row in k["by_keyword"]}
    assert set(by_keyword) == {"cats", "funny", "vintage", "dogs", "retro", "coffee"}
    for keyword, row in by_keyword.items():
        carriers = [a for a, t in tags.items() if keyword in t]
        rev = sum((revenue.get(a, Decimal(0)) for a in carriers), Decimal(0))
        u = sum(units.get(a, 0) for a in carriers)
        s = sum(sessions.get(a, 0) for a in carriers)
        attributed = sum((revenue.get(a, Decimal(0)) / len(tags[a]) for a in carriers), Decimal(0))
        assert row["designs"] == len(carriers)
        assert row["revenue"] == str(q(rev)) and row["units"] == u and row["sessions"] == s
        assert row["conversion_percent"] == str(pct(u, s))
        assert row["revenue_per_design"] == str(q(rev / len(carriers)))
        assert row["attributed_revenue"] == str(q(attributed))
    # cats: A 2000 + C 600 + D 360 + unsold H = 2960 over 4 designs; attributed 2000/3 + 600/2 + 360/2 + 0 = 1146.67
    assert (by_keyword["cats"]["revenue"], by_keyword["cats"]["attributed_revenue"]) == ("2960.00", "1146.67")
    assert by_keyword["cats"]["designs_with_sales"] == 3
    # The tags' attributed revenue adds up to the revenue of the designs that have tags (each figure is
    # rounded to the cent on its own: 2000/3 three times is 2000.01).
    assert sum(Decimal(r["attributed_revenue"]) for r in k["by_keyword"]) == Decimal("3345.01")
    types = {row["product_type"]: row for row in k["by_product_type"]}
    assert {t: (row["designs"], row["revenue"]) for t, row in types.items()} == {
        "T-Shirt": (2, "2225.00"), "Hoodie": (1, "600.00"), "Mug": (3, "520.00")}
    assert result["inputs"]["design_csv"]["duplicate_asins_merged"] == 1
    assert "merged" in " ".join(result["warnings"])


def test_keyword_recommendations(api):
    """Strong and weak tags, by revenue per design against the average design."""
    rows = [["ASIN", "Title", "Sessions", "Units Ordered", "Ordered Product Sales"]]
    design = [["ASIN", "Product Type", "Keywords"]]
    # Nine designs: three 'gold' at £300, six 'grey' at £10 (mugs and tees).
    for n in range(9):
        asin = f"B0KW{n:06d}"
        gold = n < 3
        rows.append([asin, f"Design {n}", "100", "10" if gold else "1", "£300.00" if gold else "£10.00"])
        design.append([asin, "Mug" if n % 2 else "T-Shirt", "gold" if gold else "grey"])
    _, result = run(api, csv_bytes(rows), csv_bytes(design), asin="B0KW000000", marketplace="UK")
    recs = {r["type"]: r for r in result["recommendations"]}
    # Average design: (3*300 + 6*10) / 9 = 106.67; gold 300 >= 2x; grey 10 <= 1/4.
    assert recs["more_designs_for_keyword"]["keyword"] == "gold"
    assert recs["more_designs_for_keyword"]["estimated_revenue_impact"] == "300.00"
    assert "£" not in recs["more_designs_for_keyword"]["why"] and "GBP 300.00 each" in recs["more_designs_for_keyword"]["why"]
    assert recs["rework_keyword"]["keyword"] == "grey"
    assert recs["rework_keyword"]["figures"]["average_revenue_per_design"] == "106.67"


def test_row_errors_are_collected_and_the_good_rows_counted(api):
    header = ["Date", "(Child) ASIN", "Title", "Sessions - Total", "Units Ordered", "Ordered Product Sales"]
    lines = [
        ",".join(header),
        "3/1/2024,B0AAAAAAA1,Mug,10,2,$20.00",           # 2 good
        "3/1/2024,B0AAAAAAA1,Mug,10,abc,$20.00",         # 3 units not a number
        ",,,,,",                                         # 4 empty
        "3/1/2024,TOTAL,,100,20,$200.00",                # 5 not an ASIN
        "13/45/2024,B0AAAAAAA1,Mug,10,1,$10.00",          # 6 not a date
        "3/2/2024,B0AAAAAAA1,Mug",                       # 7 too few fields
        "3/2/2024,B0BBBBBBB2,\"Cup, large\",5,1,$7.50,,",  # 8 good (trailing empty cells)
        "",                                              # 9 blank
        "3/3/2024,B0BBBBBBB2,Cup,5,1,",                  # 10 empty revenue
        "3/3/2024,B0BBBBBBB2,Cup,5,1.5,$1.00",           # 11 a fraction of a unit
    ]
    _, result = run(api, ("\r\n".join(lines) + "\r\n").encode())
    revenue_in = result["inputs"]["revenue_csv"]
    assert (revenue_in["rows_used"], revenue_in["rows_rejected"], revenue_in["empty_rows"]) == (2, 6, 2)
    errors = result["row_errors"]
    assert errors["count"] == 6
    assert [(e["line"], e["column"], e["reason"]) for e in errors["rows"]] == [
        (3, "Units Ordered", "not a number"),
        (5, "(Child) ASIN", "not an ASIN (10 characters: B0 and 8 letters or digits, or an ISBN-10)"),
        (6, "Date", "not a valid calendar date"),
        (7, None, "has 3 fields, the header has 6"),
        (10, "Ordered Product Sales", "empty"),
        (11, "Units Ordered", "not a whole number"),
    ]
    assert errors["rows"][0]["value"] == "abc"
    assert (result["totals"]["revenue"], result["totals"]["units"], result["totals"]["sessions"]) == ("27.50", 3, 15)
    assert any("6 rows were rejected" in w for w in result["warnings"])
    assert {i["asin"]: i["title"] for i in result["items"]} == {"B0AAAAAAA1": "Mug", "B0BBBBBBB2": "Cup, large"}


def test_order_report_tab_separated_without_sessions(api):
    header = ["amazon-order-id", "purchase-date", "sku", "asin", "product-name", "quantity", "currency",
              "item-price", "item-status"]
    rows = [header,
            ["111-1", "2024-03-01T10:00:00+00:00", "MUG1", "B0AAAAAAA1", "Mug", "2", "USD", "25.98", "Shipped"],
            ["111-2", "2024-03-01T11:00:00+00:00", "CUP1", "B0BBBBBBB2", "Cup", "1", "USD", "9.99", "Shipped"],
            ["111-3", "2024-03-02T09:00:00+00:00", "MUG1", "B0AAAAAAA1", "Mug", "1", "USD", "", "Cancelled"],
            ["111-4", "2024-03-09T09:00:00-08:00", "MUG1", "B0AAAAAAA1", "Mug", "3", "USD", "38.97", "Pending"]]
    _, result = run(api, csv_bytes(rows, delimiter="\t"))
    t = result["totals"]
    assert (t["revenue"], t["units"], t["sessions"], t["conversion_percent"], t["average_price"]) == (
        "74.94", 6, None, None, "12.49")
    assert [(w["period"], w["revenue"], w["units"]) for w in result["trends"]["weekly"]] == [
        ("2024-W09", "35.97", 3), ("2024-W10", "38.97", 3)]
    assert result["inputs"]["revenue_csv"]["cancelled_rows_skipped"] == 1
    warnings = " ".join(result["warnings"])
    assert "no sessions column" in warnings and "1 cancelled order rows were left out" in warnings
    assert result["rankings"]["listing_problems"] == [] and result["rankings"]["thresholds"]["available"] is False


def test_rising_and_falling_items_month_over_month(api):
    recs = []
    for n in range(61):  # March and April 2024
        day = date(2024, 3, 1) + timedelta(days=n)
        april = day.month == 4
        recs.append(Rec(day, "B0XXXXXXX1", "Falling", 20, 30, 1, Decimal("5.00" if april else "10.00")))
        recs.append(Rec(day, "B0YYYYYYY2", "Rising", 20, 30, 1, Decimal("15.00" if april else "10.00")))
        recs.append(Rec(day, "B0ZZZZZZZ3", "Steady", 20, 30, 1, Decimal("10.00")))
    _, result = run(api, business_report_us(recs), asin="B0ZZZZZZZ3")
    r = result["rankings"]
    assert r["movers_basis"] == {"before": "2024-03", "after": "2024-04", "days_before": 31, "days_after": 30}
    assert [(m["asin"], m["change_percent"], m["revenue_change_per_30_days"]) for m in r["falling"]] == [
        ("B0XXXXXXX1", "-50.00", "-150.00")]
    assert [(m["asin"], m["change_percent"], m["revenue_change_per_30_days"]) for m in r["rising"]] == [
        ("B0YYYYYYY2", "50.00", "150.00")]
    decline = [x for x in result["recommendations"] if x["type"] == "investigate_decline"]
    assert decline and decline[0]["asin"] == "B0XXXXXXX1" and decline[0]["estimated_revenue_impact"] == "150.00"


def test_focus_asin_missing_from_the_data_still_analyses_the_rest(api):
    _, result = run(api, business_report_us(RECS[:12]), asin="B0NOTTHERE")
    assert result["focus"]["found"] is False
    assert "B0NOTTHERE has no rows in revenue_csv" in " ".join(result["warnings"])
    assert result["totals"]["revenue"] == sums(RECS[:12])["revenue"]


def test_user_text_cannot_become_a_formula_in_the_report(api, media_root):
    rows = [["Date", "ASIN", "Title", "Units Ordered", "Ordered Product Sales"],
            ["2024-03-01", "B0AAAAAAA1", '=HYPERLINK("http://evil.example","click")', "1", "$10.00"],
            ["2024-03-01", "B0BBBBBBB2", "+1-555-0100 \x07bell", "1", "$5.00"],
            ["2024-03-01", "B0CCCCCCC3", "@SUM(A1:A9)", "x", "$5.00"]]
    design = csv_bytes([["ASIN", "Name", "Product Type", "Tags"],
                        ["B0AAAAAAA1", "-2+3", "=cmd|' /C calc'!A0", "@evil, \tnice"]])
    job_id, result = run(api, csv_bytes(rows), design)
    from analysis.models import SalesAnalysis
    book = load_workbook(media_root / SalesAnalysis.objects.get(job_id=job_id).report_file)
    texts = []
    for ws in book.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    texts.append(cell.value)
    assert "'=HYPERLINK(\"http://evil.example\",\"click\")" in texts
    assert "'+1-555-0100 bell" in texts  # the control character is gone too
    assert "'=cmd|' /C calc'!A0" in texts and "'@evil" in texts
    # The rejected row's value appears on the errors sheet, defused.
    assert "x" in texts
    # In the JSON the text is kept as it was: only files we write are defused.
    assert result["items"][0]["title"] == '=HYPERLINK("http://evil.example","click")'


def test_report_sheets_hold_the_sections(api, media_root):
    job_id, result = run(api, uk_period_report(), marketplace="UK")
    from analysis.models import SalesAnalysis
    book = load_workbook(media_root / SalesAnalysis.objects.get(job_id=job_id).report_file)
    recs = [row for row in book["Recommendations"].iter_rows(min_row=3, values_only=True) if row[0]]
    assert [(r[0], Decimal(str(r[3])) if r[3] is not None else None) for r in recs] == [
        (1, Decimal("1794.78")), (2, Decimal("1438.04")), (3, None)]
    items = list(book["Items"].iter_rows(min_row=3, values_only=True))
    assert [row[0] for row in items] == [i["asin"] for i in result["items"]]
    problems = [row for row in book["Rankings"].iter_rows(values_only=True) if row[0] == "B0BBBBBBB2"]
    assert problems, "the listing problem is on the rankings sheet"
    assert book["Trends"]["A1"].value.startswith("revenue_csv has no date column")
