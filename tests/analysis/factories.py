"""Realistic seller exports, written from known records, and the expected figures computed from those
records directly (plain sums and divisions), never by the code under test."""

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


@dataclass
class Rec:
    day: date
    asin: str
    title: str
    sessions: int
    page_views: int
    units: int
    revenue: Decimal


def q(value):
    return Decimal(value).quantize(CENT, ROUND_HALF_UP)


def pct(part, whole):
    return None if not whole else q(Decimal(part) * 100 / Decimal(whole))


# -- formats as the exports print them --------------------------------------------------------------
def us_money(d):
    return f"${d:,.2f}"


def us_int(n):
    return f"{n:,}"


def de_money(d):
    return f"{d:,.2f}".replace(",", "X").replace(".", ",").replace("X", ".") + " €"


def de_int(n):
    return f"{n:,}".replace(",", ".")


def uk_money(d):
    return f"£{d:,.2f}"


def csv_bytes(rows, delimiter=",", encoding="utf-8"):
    buffer = io.StringIO(newline="")
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode(encoding)


US_HEADER = ["Date", "(Parent) ASIN", "(Child) ASIN", "Title", "Sessions - Total", "Session Percentage - Total",
             "Page Views - Total", "Page Views Percentage - Total", "Featured Offer (Buy Box) Percentage",
             "Units Ordered", "Unit Session Percentage", "Ordered Product Sales", "Total Order Items"]


def business_report_us(recs):
    """Seller Central (US): Detail Page Sales and Traffic by Child Item, by date."""
    rows = [US_HEADER]
    for r in recs:
        rows.append([f"{r.day.month}/{r.day.day}/{r.day.year}", "B0PARENT00", r.asin, r.title, us_int(r.sessions),
                     "1.00%", us_int(r.page_views), "1.00%", "100.00%", us_int(r.units),
                     f"{(r.units / r.sessions * 100) if r.sessions else 0:.2f}%", us_money(r.revenue),
                     us_int(r.units)])
    return csv_bytes(rows)


DE_HEADER = ["Datum", "(Übergeordnete) ASIN", "(Untergeordnete) ASIN", "Titel", "Sitzungen – Summe",
             "Seitenaufrufe – Summe", "Bestellte Einheiten", "Umsatz bestellter Produkte"]


def business_report_de(recs, encoding="cp1252"):
    """Seller Central (DE): semicolons, 1.234,56 €, 31.03.2024, saved by Excel in the ANSI code page."""
    rows = [DE_HEADER]
    for r in recs:
        rows.append([r.day.strftime("%d.%m.%Y"), "B0PARENT00", r.asin, r.title, de_int(r.sessions),
                     de_int(r.page_views), de_int(r.units), de_money(r.revenue)])
    return csv_bytes(rows, delimiter=";", encoding=encoding)


def catalogue(start, days, items):
    """items: list of (asin, title, sessions_per_day, conversion_percent, price). Deterministic variation by
    day so that weeks and months differ."""
    recs = []
    for n in range(days):
        day = start + timedelta(days=n)
        for k, (asin, title, sessions, conv, price) in enumerate(items):
            s = sessions + (n * 7 + k * 3) % 11
            units = s * conv // 100 + (n + k) % 3
            recs.append(Rec(day, asin, title, s, s + s // 2 + 1, units, q(Decimal(price) * units)))
    return recs


# -- expected figures -------------------------------------------------------------------------------
def sums(recs):
    revenue = sum((r.revenue for r in recs), Decimal(0))
    units = sum(r.units for r in recs)
    sessions = sum(r.sessions for r in recs)
    return {
        "revenue": str(q(revenue)),
        "units": units,
        "sessions": sessions,
        "page_views": sum(r.page_views for r in recs),
        "conversion_percent": str(pct(units, sessions)) if sessions else None,
        "average_price": str(q(revenue / units)) if units else None,
    }


def by_week(recs):
    groups = defaultdict(list)
    for r in recs:
        monday = r.day - timedelta(days=r.day.weekday())
        groups[monday].append(r)
    out = []
    for monday in sorted(groups):
        year, week, _ = monday.isocalendar()
        out.append({"period": f"{year}-W{week:02d}", "start": monday.isoformat(), **sums(groups[monday])})
    return out


def by_month(recs):
    groups = defaultdict(list)
    for r in recs:
        groups[(r.day.year, r.day.month)].append(r)
    return [{"period": f"{y}-{m:02d}", **sums(groups[(y, m)])} for (y, m) in sorted(groups)]


def by_item(recs):
    groups = defaultdict(list)
    for r in recs:
        groups[r.asin].append(r)
    return {asin: sums(rs) for asin, rs in groups.items()}
