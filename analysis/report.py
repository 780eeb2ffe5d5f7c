"""The xlsx report: one sheet per section of the result, and a chart of the revenue trend.

It is built from the job's stored JSON result only, so a lost report file can be rebuilt from the
database and the file never says anything the API does not.

Every text cell passes through `safe()`: titles, keywords and names come from the seller's files (or
whoever wrote them) and a cell starting with = + - @ would otherwise be a formula in Excel (OWASP CSV
injection); openpyxl itself would store a string starting with "=" as a formula.
"""

import os
from datetime import date
from decimal import Decimal

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.chart import LineChart, Reference
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
BOLD = Font(bold=True)
TITLE = Font(bold=True, size=14)
HEADER_FILL = PatternFill("solid", fgColor="DDE7F0")
FORMATS = {"money": "#,##0.00", "int": "#,##0", "pct": "0.00%", "dec": "#,##0.0", "date": "yyyy-mm-dd"}


def safe(value):
    """A cell value from untrusted text: no control characters, and never a formula."""
    if not isinstance(value, str):
        return value
    value = ILLEGAL_CHARACTERS_RE.sub("", value)
    if value.startswith(FORMULA_START):
        return "'" + value
    return value


def _cell_value(value, kind):
    if value is None or value == "":
        return None
    if kind in ("money", "dec"):
        return Decimal(str(value))
    if kind == "int":
        return int(value)
    if kind == "pct":
        return Decimal(str(value)) / 100
    if kind == "date":
        return date.fromisoformat(str(value)[:10])
    if kind == "bool":
        return "yes" if value else "no"
    return safe(str(value))


def _put(ws, row, col, value, kind="text", font=None):
    cell = ws.cell(row=row, column=col, value=_cell_value(value, kind))
    if kind in FORMATS:
        cell.number_format = FORMATS[kind]
    if font:
        cell.font = font
    return cell


def _heading(ws, row, text):
    _put(ws, row, 1, text, font=BOLD)
    return row + 1


def _table(ws, row, columns, records, col=1):
    """Write a header and one line per record; returns the row after the table."""
    for j, (header, _key, _kind) in enumerate(columns):
        cell = _put(ws, row, col + j, header, font=BOLD)
        cell.fill = HEADER_FILL
    row += 1
    if not records:
        _put(ws, row, col, "(none)")
        return row + 2
    for record in records:
        for j, (_header, key, kind) in enumerate(columns):
            _put(ws, row, col + j, record.get(key), kind)
        row += 1
    return row + 1


def _pairs(ws, row, pairs):
    for label, value, kind in pairs:
        _put(ws, row, 1, label, font=BOLD)
        _put(ws, row, 2, value, kind)
        row += 1
    return row + 1


def _widths(ws, widths):
    for i, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(i)].width = width


METRIC_COLUMNS = [
    ("Revenue", "revenue", "money"), ("Units", "units", "int"), ("Sessions", "sessions", "int"),
    ("Page views", "page_views", "int"), ("Conversion", "conversion_percent", "pct"),
    ("Average price", "average_price", "money"),
]
ITEM_COLUMNS = [("ASIN", "asin", "text"), ("Title", "title", "text"), *METRIC_COLUMNS,
                ("Share of revenue", "revenue_share_percent", "pct"), ("Rank by revenue", "rank_by_revenue", "int")]


def build(result: dict, path, *, generated_at=None):
    """Write the report for a JSON result to `path` (atomically: a reader never sees half a file)."""
    wb = Workbook()
    cur = result.get("currency", "")
    _summary(wb.active, result, cur, generated_at)
    _trends(wb.create_sheet("Trends"), result)
    _rankings(wb.create_sheet("Rankings"), result)
    _items(wb.create_sheet("Items"), result)
    _keywords(wb.create_sheet("Keywords"), result)
    _recommendations(wb.create_sheet("Recommendations"), result, cur)
    _errors(wb.create_sheet("Row errors"), result)
    tmp = f"{path}.tmp-{os.getpid()}"
    wb.save(tmp)
    os.replace(tmp, path)
    return path


def _summary(ws, result, cur, generated_at):
    ws.title = "Summary"
    _put(ws, 1, 1, f"Sales analysis for {result['asin']} on Amazon {result['marketplace']}", font=TITLE)
    inputs = result["inputs"]
    revenue_in = inputs["revenue_csv"]
    period = result.get("period") or {}
    row = _pairs(ws, 3, [
        ("Focus ASIN", result["asin"], "text"),
        ("Marketplace", result["marketplace"], "text"),
        ("Currency", cur, "text"),
        ("First date", period.get("first_date"), "date"),
        ("Last date", period.get("last_date"), "date"),
        ("Revenue file", revenue_in["filename"], "text"),
        ("Rows used", revenue_in["rows_used"], "int"),
        ("Rows rejected", revenue_in["rows_rejected"], "int"),
        ("Empty rows skipped", revenue_in["empty_rows"], "int"),
        ("Design file", (inputs.get("design_csv") or {}).get("filename", "(none)"), "text"),
        ("Generated", generated_at or result.get("generated_at"), "text"),
    ])
    totals = result["totals"]
    row = _heading(ws, row, "Totals")
    row = _pairs(ws, row, [
        ("Revenue", totals["revenue"], "money"), ("Units", totals["units"], "int"),
        ("Sessions", totals["sessions"], "int"), ("Page views", totals["page_views"], "int"),
        ("Conversion (units / sessions)", totals["conversion_percent"], "pct"),
        ("Average price", totals["average_price"], "money"), ("Items", totals["items"], "int"),
        ("Items with sales", totals["items_with_sales"], "int"),
    ])
    momentum = (result.get("trends") or {}).get("momentum")
    if momentum:
        row = _heading(ws, row, f"Last {momentum['window_days']} days against the {momentum['window_days']} before")
        row = _table(ws, row, [("Window", "label", "text"), ("Start", "start", "date"), ("End", "end", "date"),
                               *METRIC_COLUMNS],
                     [dict(momentum["previous"], label="previous"), dict(momentum["recent"], label="recent")])
        row = _pairs(ws, row - 1, [("Revenue change", momentum["revenue_change_percent"], "pct"),
                                   ("Units change", momentum["units_change_percent"], "pct")])
    focus = result["focus"]
    row = _heading(ws, row, f"{focus['asin']} against the catalogue")
    if focus.get("found"):
        row = _pairs(ws, row, [
            ("Title", focus["title"], "text"),
            ("Revenue", focus["revenue"], "money"), ("Units", focus["units"], "int"),
            ("Sessions", focus["sessions"], "int"), ("Conversion", focus["conversion_percent"], "pct"),
            ("Catalogue conversion", focus["catalogue_conversion_percent"], "pct"),
            ("Average price", focus["average_price"], "money"),
            ("Catalogue average price", focus["catalogue_average_price"], "money"),
            ("Share of revenue", focus["share_of_revenue_percent"], "pct"),
            ("Share of units", focus["share_of_units_percent"], "pct"),
            ("Share of sessions", focus["share_of_sessions_percent"], "pct"),
            ("Rank by revenue", f"{focus['rank_by_revenue']} of {focus['items_in_catalogue']}", "text"),
        ])
    else:
        row = _pairs(ws, row, [("Note", focus["note"], "text")])
    row = _heading(ws, row, "Warnings")
    for warning in result.get("warnings") or ["(none)"]:
        _put(ws, row, 1, warning)
        row += 1
    _widths(ws, [34, 60, 14, 14, 14, 14, 14, 14, 14])


def _trends(ws, result):
    trends = result["trends"]
    if not trends.get("available"):
        _put(ws, 1, 1, trends.get("reason", "No trends."))
        return
    focus = result["focus"]
    focus_weekly = {p["period"]: p["revenue"] for p in focus.get("weekly") or []}
    focus_monthly = {p["period"]: p["revenue"] for p in focus.get("monthly") or []}
    columns = [("Period", "period", "text"), ("Start", "start", "date"), ("End", "end", "date"),
               ("Days covered", "days_covered", "int"), ("Partial", "partial", "bool"), *METRIC_COLUMNS,
               (f"{result['asin']} revenue", "focus_revenue", "money")]
    weekly = [dict(p, focus_revenue=focus_weekly.get(p["period"])) for p in trends["weekly"]]
    monthly = [dict(p, focus_revenue=focus_monthly.get(p["period"])) for p in trends["monthly"]]
    _put(ws, 1, 1, "Revenue by week", font=BOLD)
    end_weekly = _table(ws, 2, columns, weekly)
    _put(ws, end_weekly, 1, "Revenue by month", font=BOLD)
    _table(ws, end_weekly + 1, columns, monthly)
    revenue_col = 1 + [c[1] for c in columns].index("revenue")
    focus_col = len(columns)
    if weekly:
        chart = LineChart()
        chart.title = "Revenue by week"
        chart.y_axis.title = result.get("currency", "")
        chart.x_axis.title = "ISO week"
        chart.height, chart.width = 9, 22
        data = Reference(ws, min_col=revenue_col, min_row=2, max_row=2 + len(weekly))
        chart.add_data(data, titles_from_data=True)
        focus_data = Reference(ws, min_col=focus_col, min_row=2, max_row=2 + len(weekly))
        chart.add_data(focus_data, titles_from_data=True)
        chart.set_categories(Reference(ws, min_col=1, min_row=3, max_row=2 + len(weekly)))
        ws.add_chart(chart, f"{get_column_letter(len(columns) + 2)}2")
    if monthly:
        chart = LineChart()
        chart.title = "Revenue by month"
        chart.y_axis.title = result.get("currency", "")
        chart.height, chart.width = 9, 22
        first = end_weekly + 1
        chart.add_data(Reference(ws, min_col=revenue_col, min_row=first, max_row=first + len(monthly)),
                       titles_from_data=True)
        chart.set_categories(Reference(ws, min_col=1, min_row=first + 1, max_row=first + len(monthly)))
        ws.add_chart(chart, f"{get_column_letter(len(columns) + 2)}22")
    _widths(ws, [10, 12, 12, 13, 8, 14, 10, 10, 11, 11, 13, 16])


def _rankings(ws, result):
    r = result["rankings"]
    row = 1
    sections = [
        ("Top items by revenue", r["top_by_revenue"], ITEM_COLUMNS),
        ("Bottom items by revenue", r["bottom_by_revenue"], ITEM_COLUMNS),
        ("Top items by units", r["top_by_units"], ITEM_COLUMNS),
        ("Bottom items by units", r["bottom_by_units"], ITEM_COLUMNS),
        ("Top items by conversion", r["top_by_conversion"], ITEM_COLUMNS),
        ("Bottom items by conversion", r["bottom_by_conversion"], ITEM_COLUMNS),
        ("High traffic, low conversion (listing problems)", r["listing_problems"], ITEM_COLUMNS + [
            ("Units at catalogue conversion", "units_at_catalogue_conversion", "dec"),
            ("Missed units", "missed_units", "dec"), ("Missed revenue", "missed_revenue", "money")]),
        ("Low traffic, high conversion (promotion candidates)", r["promotion_candidates"], ITEM_COLUMNS + [
            ("Sessions target", "sessions_target", "int"), ("Extra units at target", "extra_units_at_target", "dec"),
            ("Extra revenue at target", "extra_revenue_at_target", "money")]),
    ]
    mover_columns = [("ASIN", "asin", "text"), ("Title", "title", "text"),
                     ("Revenue/day before", "revenue_per_day_before", "money"),
                     ("Revenue/day after", "revenue_per_day_after", "money"),
                     ("Change", "change_percent", "pct"),
                     ("Change per 30 days", "revenue_change_per_30_days", "money")]
    basis = r.get("movers_basis")
    suffix = f" ({basis['before']} to {basis['after']}, per day)" if basis else " (needs two months of dates)"
    sections += [("Rising items" + suffix, r["rising"], mover_columns),
                 ("Falling items" + suffix, r["falling"], mover_columns)]
    thresholds = r.get("thresholds") or {}
    if thresholds.get("available"):
        _put(ws, row, 1, (
            f"Conversion lists use items with at least {thresholds['min_sessions']} sessions. High traffic: "
            f"{thresholds['high_traffic_sessions']}+ sessions; low traffic: up to {thresholds['low_traffic_sessions']}; "
            f"low conversion: up to {thresholds['low_conversion_percent']}%; high: {thresholds['high_conversion_percent']}%+."
        ))
        row += 2
    elif thresholds.get("reason"):
        _put(ws, row, 1, thresholds["reason"])
        row += 2
    for title, records, columns in sections:
        row = _heading(ws, row, title)
        row = _table(ws, row, columns, records)
    _widths(ws, [13, 50, 14, 10, 10, 11, 11, 13, 14, 14, 16, 14, 16])


def _items(ws, result):
    _put(ws, 1, 1, f"All items ({result['totals']['items']})"
         + (f"; the first {len(result['items'])} by revenue" if result.get("items_truncated") else ""), font=BOLD)
    _table(ws, 2, ITEM_COLUMNS, result["items"])
    ws.freeze_panes = "A3"
    _widths(ws, [13, 60, 14, 10, 10, 11, 11, 13, 14, 14])


def _keywords(ws, result):
    k = result["keywords"]
    if not k.get("available"):
        _put(ws, 1, 1, k.get("reason", "No keyword data."))
        return
    row = _pairs(ws, 1, [
        ("Designs", k["designs"], "int"), ("Designs found in the sales", k["designs_matched_in_sales"], "int"),
        ("Designs without sales", k["designs_without_sales"], "int"),
        ("Revenue per design", k["revenue_per_design"], "money"),
        ("Sales items without a design row", k["sales_items_without_design"], "int"),
        ("Their revenue", k["sales_revenue_without_design"], "money"),
    ])
    common = [("Designs", "designs", "int"), ("Designs with sales", "designs_with_sales", "int"),
              ("Revenue", "revenue", "money"), ("Units", "units", "int"), ("Sessions", "sessions", "int"),
              ("Conversion", "conversion_percent", "pct"), ("Average price", "average_price", "money"),
              ("Revenue per design", "revenue_per_design", "money"),
              ("Share of design revenue", "share_of_design_revenue_percent", "pct")]
    row = _heading(ws, row, "By product type")
    row = _table(ws, row, [("Product type", "product_type", "text"), *common], k["by_product_type"])
    row = _heading(ws, row, "By keyword or tag (attributed: each design's sales shared equally by its tags)")
    _table(ws, row, [("Keyword", "keyword", "text"), *common,
                     ("Attributed revenue", "attributed_revenue", "money"),
                     ("Attributed units", "attributed_units", "dec")], k["by_keyword"])
    _widths(ws, [30, 12, 14, 14, 10, 10, 11, 13, 16, 16, 16, 14])


def _recommendations(ws, result, cur):
    _put(ws, 1, 1, "Recommendations, largest estimated effect first", font=BOLD)
    row = _table(ws, 2, [("Rank", "rank", "int"), ("Action", "action", "text"), ("Why (the numbers)", "why", "text"),
                         (f"Estimated revenue effect ({cur})", "estimated_revenue_impact", "money")],
                 result["recommendations"])
    for r in range(3, row):
        for c in (2, 3):
            ws.cell(row=r, column=c).alignment = Alignment(wrap_text=True, vertical="top")
    _widths(ws, [6, 60, 90, 18])


def _errors(ws, result):
    errors = result["row_errors"]
    _put(ws, 1, 1, f"{errors['count']} row(s) rejected; the first {errors['shown']} listed", font=BOLD)
    row = _table(ws, 2, [("File", "file", "text"), ("Line", "line", "int"), ("Column", "column", "text"),
                         ("Value", "value", "text"), ("Problem", "reason", "text")], errors["rows"])
    row = _heading(ws, row, "By problem")
    _table(ws, row, [("Problem", "reason", "text"), ("Rows", "count", "int")],
           [{"reason": k, "count": v} for k, v in errors["by_reason"].items()])
    _widths(ws, [40, 8, 22, 40, 50])
