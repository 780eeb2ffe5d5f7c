"""The figures of a sales analysis, computed from aggregates (never from the rows themselves).

`Aggregator` is fed one row at a time and keeps only sums: per item, per day, per item and month. Its
memory grows with the number of items and days, not with the number of rows, which is what lets a
1M-row export run in bounded memory. Everything after that works on those sums.

Money is Decimal throughout and rounded to cents only when a figure is reported. Conversion is units
divided by sessions, as Amazon's "Unit Session Percentage".
"""

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

ZERO = Decimal(0)
CENT = Decimal("0.01")
TENTH = Decimal("0.1")

# An item converts badly when at or below this share of the catalogue's conversion, well at or above
# the second; both only among items with enough sessions for a rate to mean something.
LOW_CONVERSION_FACTOR = Decimal("0.5")
HIGH_CONVERSION_FACTOR = Decimal("1.5")
# Fewer items than this with enough sessions and quartiles say nothing: no traffic-based lists then.
MIN_ITEMS_FOR_TRAFFIC_LISTS = 4
# An item "moves" when its revenue per day changes by at least this much between the last two months.
MOVER_CHANGE_PERCENT = Decimal(20)
MIN_MONTH_DAYS_FOR_MOVERS = 7


def money(value):
    return None if value is None else Decimal(value).quantize(CENT, ROUND_HALF_UP)


def percent(part, whole):
    if not whole:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(CENT, ROUND_HALF_UP)


def per(amount, count):
    return money(Decimal(amount) / count) if count else None


def nearest_rank(sorted_values, p):
    """The p-th percentile by nearest rank (no interpolation: easy to check by hand)."""
    if not sorted_values:
        return None
    return sorted_values[max(0, math.ceil(p / 100 * len(sorted_values)) - 1)]


@dataclass
class Sums:
    revenue: Decimal = ZERO
    units: int = 0
    sessions: int = 0
    page_views: int = 0

    def add(self, other):
        self.revenue += other.revenue
        self.units += other.units
        self.sessions += other.sessions
        self.page_views += other.page_views


class Aggregator:
    """Running sums of the revenue rows. Lists, not objects, in the hot loop: a million rows go through."""

    def __init__(self, focus_asin, has_sessions, has_page_views):
        self.focus = focus_asin
        self.has_sessions = has_sessions
        self.has_page_views = has_page_views
        self.items = {}  # asin -> [revenue, units, sessions, page_views, rows, title]
        self.days = {}  # date -> [revenue, units, sessions, page_views]
        self.focus_days = {}
        self.item_months = {}  # (asin, months since year 0) -> revenue
        self.rows = 0

    def add(self, asin, title, day, revenue, units, sessions, page_views):
        self.rows += 1
        item = self.items.get(asin)
        if item is None:
            item = self.items[asin] = [ZERO, 0, 0, 0, 0, title]
        elif title and not item[5]:
            item[5] = title
        item[0] += revenue
        item[1] += units
        item[2] += sessions
        item[3] += page_views
        item[4] += 1
        if day is None:
            return
        sums = self.days.get(day)
        if sums is None:
            sums = self.days[day] = [ZERO, 0, 0, 0]
        sums[0] += revenue
        sums[1] += units
        sums[2] += sessions
        sums[3] += page_views
        if asin == self.focus:
            sums = self.focus_days.get(day)
            if sums is None:
                sums = self.focus_days[day] = [ZERO, 0, 0, 0]
            sums[0] += revenue
            sums[1] += units
            sums[2] += sessions
            sums[3] += page_views
        key = (asin, day.year * 12 + day.month - 1)
        self.item_months[key] = self.item_months.get(key, ZERO) + revenue


class Analysis:
    """All sections of the result, from an Aggregator and the parsed designs."""

    def __init__(self, agg: Aggregator, designs: dict | None, *, top_n=10, min_sessions=20,
                 max_recommendations=10, currency="USD"):
        self.agg = agg
        self.designs = designs
        self.top_n = top_n
        self.min_sessions = min_sessions
        self.max_recommendations = max_recommendations
        self.currency = currency
        self.total = Sums()
        self.item_sums = {}
        for asin, (revenue, units, sessions, page_views, _rows, _title) in agg.items.items():
            sums = Sums(revenue, units, sessions, page_views)
            self.item_sums[asin] = sums
            self.total.add(sums)
        self.by_revenue = sorted(agg.items, key=lambda a: (-agg.items[a][0], a))
        self.first_day = min(agg.days) if agg.days else None
        self.last_day = max(agg.days) if agg.days else None

    # -- formatting ---------------------------------------------------------------------------------
    def metrics(self, s: Sums):
        return {
            "revenue": money(s.revenue),
            "units": s.units,
            "sessions": s.sessions if self.agg.has_sessions else None,
            "page_views": s.page_views if self.agg.has_page_views else None,
            "conversion_percent": percent(s.units, s.sessions) if self.agg.has_sessions else None,
            "average_price": per(s.revenue, s.units) if s.units > 0 else None,
        }

    def item_row(self, asin):
        s = self.item_sums[asin]
        return {
            "asin": asin,
            "title": self.agg.items[asin][5],
            **self.metrics(s),
            "revenue_share_percent": percent(s.revenue, self.total.revenue),
            "rank_by_revenue": self.rank(asin),
        }

    def rank(self, asin):
        if not hasattr(self, "_ranks"):
            self._ranks = {a: i for i, a in enumerate(self.by_revenue, start=1)}
        return self._ranks.get(asin)

    def conversion(self, s: Sums):
        return Decimal(s.units) / s.sessions if s.sessions else None

    def catalogue_conversion(self):
        return self.conversion(self.total) if self.agg.has_sessions else None

    def catalogue_price(self):
        return self.total.revenue / self.total.units if self.total.units > 0 else None

    # -- step 2: totals and trends ------------------------------------------------------------------
    def totals(self):
        items = len(self.item_sums)
        return {
            **self.metrics(self.total),
            "items": items,
            "items_with_sales": sum(1 for s in self.item_sums.values() if s.units > 0),
            "revenue_per_item": per(self.total.revenue, items),
        }

    def period(self):
        if self.first_day is None:
            return None
        return {"first_date": self.first_day, "last_date": self.last_day,
                "days": (self.last_day - self.first_day).days + 1, "days_with_data": len(self.agg.days)}

    def series(self, days: dict, grain: str):
        """Weekly (ISO weeks, Monday first) or monthly sums from the first to the last day of the data;
        periods without rows appear with zeros, and periods the data cover only in part say so."""
        if self.first_day is None:
            return []
        buckets = defaultdict(Sums)
        for day, (revenue, units, sessions, page_views) in days.items():
            buckets[_period_start(day, grain)].add(Sums(revenue, units, sessions, page_views))
        out = []
        start = _period_start(self.first_day, grain)
        while start <= self.last_day:
            end = _period_end(start, grain)
            covered = (min(end, self.last_day) - max(start, self.first_day)).days + 1
            s = buckets.get(start, Sums())
            out.append({
                "period": _period_label(start, grain),
                "start": start,
                "end": end,
                "days_covered": covered,
                "partial": covered < (end - start).days + 1,
                **self.metrics(s),
            })
            start = end + timedelta(days=1)
        return out

    def momentum(self, days: dict):
        """The last 28 days against the 28 before (or the second half of a shorter span against the first)."""
        if self.first_day is None:
            return None
        span = (self.last_day - self.first_day).days + 1
        window = 28 if span >= 56 else span // 2
        if window < 1:
            return None
        recent_start = self.last_day - timedelta(days=window - 1)
        previous_start = recent_start - timedelta(days=window)
        recent, previous = Sums(), Sums()
        for day, (revenue, units, sessions, page_views) in days.items():
            if day >= recent_start:
                recent.add(Sums(revenue, units, sessions, page_views))
            elif day >= previous_start:
                previous.add(Sums(revenue, units, sessions, page_views))
        return {
            "window_days": window,
            "recent": {"start": recent_start, "end": self.last_day, **self.metrics(recent)},
            "previous": {"start": previous_start, "end": recent_start - timedelta(days=1),
                         **self.metrics(previous)},
            "revenue_change_percent": percent(recent.revenue - previous.revenue, previous.revenue),
            "units_change_percent": percent(recent.units - previous.units, previous.units),
        }

    def trends(self):
        if self.first_day is None:
            return {"available": False, "reason": "revenue_csv has no date column, so there are no trends.",
                    "weekly": [], "monthly": [], "momentum": None}
        return {"available": True, "weekly": self.series(self.agg.days, "week"),
                "monthly": self.series(self.agg.days, "month"), "momentum": self.momentum(self.agg.days)}

    def focus(self):
        asin = self.agg.focus
        items = len(self.item_sums)
        if asin not in self.item_sums:
            return {"asin": asin, "found": False, "items_in_catalogue": items,
                    "note": f"{asin} has no rows in revenue_csv; the analysis covers the other items."}
        s = self.item_sums[asin]
        cat_conv, conv = self.catalogue_conversion(), self.conversion(s)
        cat_price = self.catalogue_price()
        price = s.revenue / s.units if s.units > 0 else None
        by_units = sorted(self.item_sums, key=lambda a: (-self.item_sums[a].units, a))
        return {
            "asin": asin,
            "found": True,
            "title": self.agg.items[asin][5],
            **self.metrics(s),
            "items_in_catalogue": items,
            "rank_by_revenue": self.rank(asin),
            "rank_by_units": by_units.index(asin) + 1,
            "share_of_revenue_percent": percent(s.revenue, self.total.revenue),
            "share_of_units_percent": percent(s.units, self.total.units),
            "share_of_sessions_percent": percent(s.sessions, self.total.sessions) if self.agg.has_sessions
            else None,
            "catalogue_conversion_percent": percent(self.total.units, self.total.sessions)
            if self.agg.has_sessions else None,
            "conversion_vs_catalogue_points": (
                ((conv - cat_conv) * 100).quantize(CENT, ROUND_HALF_UP)
                if conv is not None and cat_conv is not None else None
            ),
            "catalogue_average_price": money(cat_price),
            "average_price_vs_catalogue_percent": (
                percent(price - cat_price, cat_price) if price is not None and cat_price else None
            ),
            "catalogue_average_per_item": {
                "revenue": per(self.total.revenue, items),
                "units": (Decimal(self.total.units) / items).quantize(TENTH, ROUND_HALF_UP),
                "sessions": (Decimal(self.total.sessions) / items).quantize(TENTH, ROUND_HALF_UP)
                if self.agg.has_sessions else None,
            },
            "weekly": self.series(self.agg.focus_days, "week"),
            "monthly": self.series(self.agg.focus_days, "month"),
            "momentum": self.momentum(self.agg.focus_days),
        }

    # -- step 3: rankings ---------------------------------------------------------------------------
    def rankings(self):
        n = self.top_n
        top_revenue = self.by_revenue[:n]
        rest = [a for a in self.by_revenue if a not in set(top_revenue)]
        by_units = sorted(self.item_sums, key=lambda a: (-self.item_sums[a].units, a))
        top_units = by_units[:n]
        rest_units = [a for a in by_units if a not in set(top_units)]
        out = {
            "top_by_revenue": [self.item_row(a) for a in top_revenue],
            "bottom_by_revenue": [self.item_row(a) for a in sorted(rest, key=lambda a: (self.item_sums[a].revenue, a))[:n]],
            "top_by_units": [self.item_row(a) for a in top_units],
            "bottom_by_units": [self.item_row(a) for a in sorted(rest_units, key=lambda a: (self.item_sums[a].units, a))[:n]],
        }
        out.update(self._conversion_lists())
        out.update(self._movers())
        return out

    def traffic_population(self):
        return [a for a, s in self.item_sums.items() if s.sessions >= self.min_sessions]

    def _conversion_lists(self):
        empty = {"top_by_conversion": [], "bottom_by_conversion": [], "listing_problems": [],
                 "promotion_candidates": []}
        if not self.agg.has_sessions:
            return {**empty, "thresholds": {"available": False,
                                             "reason": "revenue_csv has no sessions column."}}
        population = self.traffic_population()
        conv = {a: self.conversion(self.item_sums[a]) for a in population}
        ordered = sorted(population, key=lambda a: (-conv[a], -self.item_sums[a].sessions, a))
        top = ordered[: self.top_n]
        rest = [a for a in ordered if a not in set(top)]
        bottom = sorted(rest, key=lambda a: (conv[a], -self.item_sums[a].sessions, a))[: self.top_n]
        out = {
            "top_by_conversion": [self.item_row(a) for a in top],
            "bottom_by_conversion": [self.item_row(a) for a in bottom],
        }
        sessions = sorted(self.item_sums[a].sessions for a in population)
        cat_conv = self.catalogue_conversion()
        thresholds = {
            "available": len(population) >= MIN_ITEMS_FOR_TRAFFIC_LISTS and bool(cat_conv),
            "min_sessions": self.min_sessions,
            "items_with_enough_sessions": len(population),
            "high_traffic_sessions": nearest_rank(sessions, 75),
            "low_traffic_sessions": nearest_rank(sessions, 50),
            "catalogue_conversion_percent": percent(self.total.units, self.total.sessions),
            "low_conversion_percent": (cat_conv * LOW_CONVERSION_FACTOR * 100).quantize(CENT, ROUND_HALF_UP)
            if cat_conv is not None else None,
            "high_conversion_percent": (cat_conv * HIGH_CONVERSION_FACTOR * 100).quantize(CENT, ROUND_HALF_UP)
            if cat_conv is not None else None,
        }
        out["thresholds"] = thresholds
        if not thresholds["available"]:
            thresholds["reason"] = (
                f"Traffic lists need at least {MIN_ITEMS_FOR_TRAFFIC_LISTS} items with {self.min_sessions} or "
                f"more sessions and some sales; found {len(population)}."
            )
            return {**empty, **out, "listing_problems": [], "promotion_candidates": []}
        high, low = thresholds["high_traffic_sessions"], thresholds["low_traffic_sessions"]
        cat_price = self.catalogue_price()
        problems, candidates = [], []
        for a in population:
            s = self.item_sums[a]
            if s.sessions >= high and conv[a] <= cat_conv * LOW_CONVERSION_FACTOR:
                expected = s.sessions * cat_conv
                lost_units = expected - s.units
                price = s.revenue / s.units if s.units > 0 else cat_price
                problems.append({
                    **self.item_row(a),
                    "units_at_catalogue_conversion": expected.quantize(TENTH, ROUND_HALF_UP),
                    "missed_units": lost_units.quantize(TENTH, ROUND_HALF_UP),
                    "missed_revenue": money(lost_units * price) if price else None,
                })
            elif s.sessions <= low and conv[a] >= cat_conv * HIGH_CONVERSION_FACTOR and s.units > 0:
                # Bought traffic converts worse than the shoppers who find an item today: the estimate
                # assumes the new sessions convert halfway between the item's rate and the catalogue's.
                extra_units = (high - s.sessions) * (conv[a] + cat_conv) / 2
                candidates.append({
                    **self.item_row(a),
                    "sessions_target": high,
                    "extra_units_at_target": extra_units.quantize(TENTH, ROUND_HALF_UP),
                    "extra_revenue_at_target": money(extra_units * s.revenue / s.units),
                })
        problems.sort(key=lambda r: (-(r["missed_revenue"] or ZERO), r["asin"]))
        candidates.sort(key=lambda r: (-r["extra_revenue_at_target"], r["asin"]))
        out["listing_problems"] = problems[: self.top_n]
        out["promotion_candidates"] = candidates[: self.top_n]
        return out

    def month_days(self, month_index):
        """Calendar days of a month (months since year 0) inside the data's date range."""
        start = date(month_index // 12, month_index % 12 + 1, 1)
        end = _period_end(start, "month")
        return (min(end, self.last_day) - max(start, self.first_day)).days + 1

    def _movers(self):
        none = {"rising": [], "falling": [], "movers_basis": None}
        if self.first_day is None:
            return none
        last = self.last_day.year * 12 + self.last_day.month - 1
        previous = last - 1
        if previous < self.first_day.year * 12 + self.first_day.month - 1:
            return none
        days_last, days_prev = self.month_days(last), self.month_days(previous)
        if days_last < MIN_MONTH_DAYS_FOR_MOVERS or days_prev < MIN_MONTH_DAYS_FOR_MOVERS:
            return none
        rising, falling = [], []
        for asin in self.item_sums:
            before = self.agg.item_months.get((asin, previous), ZERO) / days_prev
            after = self.agg.item_months.get((asin, last), ZERO) / days_last
            if before <= 0:
                continue
            change = (after - before) * 100 / before
            if abs(change) < MOVER_CHANGE_PERCENT:
                continue
            row = {
                "asin": asin,
                "title": self.agg.items[asin][5],
                "revenue_per_day_before": money(before),
                "revenue_per_day_after": money(after),
                "change_percent": change.quantize(CENT, ROUND_HALF_UP),
                "revenue_change_per_30_days": money((after - before) * 30),
            }
            (rising if change > 0 else falling).append(row)
        rising.sort(key=lambda r: (-r["revenue_change_per_30_days"], r["asin"]))
        falling.sort(key=lambda r: (r["revenue_change_per_30_days"], r["asin"]))
        basis = {
            "before": _period_label(date(previous // 12, previous % 12 + 1, 1), "month"),
            "after": _period_label(date(last // 12, last % 12 + 1, 1), "month"),
            "days_before": days_prev, "days_after": days_last,
        }
        return {"rising": rising[: self.top_n], "falling": falling[: self.top_n], "movers_basis": basis}

    # -- step 4: keywords and designs ---------------------------------------------------------------
    def keywords(self, max_keywords=1000):
        if self.designs is None:
            return {"available": False, "reason": "No design_csv was uploaded.", "by_keyword": [],
                    "by_product_type": []}
        blank = Sums()
        kw = defaultdict(lambda: {"designs": 0, "with_sales": 0, "sums": Sums(),
                                  "attr_revenue": ZERO, "attr_units": ZERO})
        types = defaultdict(lambda: {"designs": 0, "with_sales": 0, "sums": Sums()})
        design_revenue = ZERO
        matched = without_sales = 0
        for asin, design in self.designs.items():
            s = self.item_sums.get(asin, blank)
            matched += asin in self.item_sums
            sold = s.units > 0 or s.revenue > 0
            without_sales += not sold
            design_revenue += s.revenue
            tags = design["keywords"]
            for tag in tags:
                entry = kw[tag]
                entry["designs"] += 1
                entry["with_sales"] += sold
                entry["sums"].add(s)
                # A design's sales are shared equally by its tags, so the tags' shares add up to the total.
                entry["attr_revenue"] += s.revenue / len(tags)
                entry["attr_units"] += Decimal(s.units) / len(tags)
            ptype = design["product_type"] or "(no product type)"
            types[ptype]["designs"] += 1
            types[ptype]["with_sales"] += sold
            types[ptype]["sums"].add(s)
        designs = len(self.designs)
        per_design = design_revenue / designs if designs else ZERO

        def row(name_key, name, entry):
            s = entry["sums"]
            out = {
                name_key: name,
                "designs": entry["designs"],
                "designs_with_sales": entry["with_sales"],
                **self.metrics(s),
                "revenue_per_design": per(s.revenue, entry["designs"]),
                "share_of_design_revenue_percent": percent(s.revenue, design_revenue),
            }
            out.pop("page_views", None)
            if "attr_revenue" in entry:
                out["attributed_revenue"] = money(entry["attr_revenue"])
                out["attributed_units"] = entry["attr_units"].quantize(CENT, ROUND_HALF_UP)
            return out

        by_keyword = sorted(kw.items(), key=lambda kv: (-kv[1]["sums"].revenue, -kv[1]["designs"], kv[0]))
        by_type = sorted(types.items(), key=lambda kv: (-kv[1]["sums"].revenue, kv[0]))
        unmatched = [a for a in self.item_sums if a not in self.designs]
        return {
            "available": True,
            "designs": designs,
            "designs_matched_in_sales": matched,
            "designs_without_sales": without_sales,
            "design_revenue": money(design_revenue),
            "revenue_per_design": money(per_design),
            "sales_items_without_design": len(unmatched),
            "sales_revenue_without_design": money(sum((self.item_sums[a].revenue for a in unmatched), ZERO)),
            "keywords_total": len(by_keyword),
            "keywords_truncated": len(by_keyword) > max_keywords,
            "by_keyword": [row("keyword", k, e) for k, e in by_keyword[:max_keywords]],
            "by_product_type": [row("product_type", t, e) for t, e in by_type],
        }

    # -- step 5: recommendations --------------------------------------------------------------------
    def recommendations(self, rankings, keywords, focus):
        cur = self.currency
        recs = []

        def fmt(value):
            return f"{cur} {value:,.2f}"

        cat_conv_pct = percent(self.total.units, self.total.sessions) if self.agg.has_sessions else None
        for item in rankings.get("listing_problems", [])[:3]:
            recs.append({
                "type": "fix_listing",
                "asin": item["asin"],
                "action": f"Fix the listing of {item['asin']} ({_short(item['title'])}): main image, title, "
                          f"price and reviews. It gets traffic but does not convert.",
                "why": f"{item['sessions']:,} sessions but {item['conversion_percent']}% conversion against "
                       f"{cat_conv_pct}% for the catalogue; at the catalogue rate it would have sold "
                       f"{item['missed_units']} more units (about {fmt(item['missed_revenue'] or 0)}).",
                "figures": {k: item[k] for k in ("sessions", "units", "conversion_percent", "missed_units",
                                                 "missed_revenue")} | {"catalogue_conversion_percent": cat_conv_pct},
                "estimated_revenue_impact": item["missed_revenue"],
            })
        for item in rankings.get("promotion_candidates", [])[:3]:
            recs.append({
                "type": "promote",
                "asin": item["asin"],
                "action": f"Bring more traffic to {item['asin']} ({_short(item['title'])}): Sponsored Products, "
                          "a coupon, or links from your best sellers. It converts well but few shoppers see it.",
                "why": f"{item['conversion_percent']}% conversion (catalogue {cat_conv_pct}%) on only "
                       f"{item['sessions']:,} sessions; at {item['sessions_target']:,} sessions it would sell about "
                       f"{item['extra_units_at_target']} more units ({fmt(item['extra_revenue_at_target'])}), if the "
                       "new visitors convert halfway between its rate and the catalogue's.",
                "figures": {k: item[k] for k in ("sessions", "units", "conversion_percent", "sessions_target",
                                                 "extra_units_at_target", "extra_revenue_at_target")},
                "estimated_revenue_impact": item["extra_revenue_at_target"],
            })
        basis = rankings.get("movers_basis")
        for item in rankings.get("falling", [])[:3]:
            loss = -item["revenue_change_per_30_days"]
            recs.append({
                "type": "investigate_decline",
                "asin": item["asin"],
                "action": f"Find out why {item['asin']} ({_short(item['title'])}) is selling less: stock, price, "
                          "Buy Box, new reviews, competitors.",
                "why": f"Revenue per day fell {abs(item['change_percent'])}% from {basis['before']} "
                       f"({fmt(item['revenue_per_day_before'])}/day) to {basis['after']} "
                       f"({fmt(item['revenue_per_day_after'])}/day): {fmt(loss)} less per 30 days.",
                "figures": dict(item),
                "estimated_revenue_impact": loss,
            })
        if keywords.get("available") and keywords["designs"]:
            average = keywords["revenue_per_design"] or ZERO
            strong = [k for k in keywords["by_keyword"]
                      if k["designs"] >= 3 and average > 0 and k["revenue_per_design"] >= 2 * average]
            strong.sort(key=lambda k: (-k["revenue_per_design"], k["keyword"]))
            for k in strong[:2]:
                recs.append({
                    "type": "more_designs_for_keyword",
                    "keyword": k["keyword"],
                    "action": f"Make more designs for \"{k['keyword']}\".",
                    "why": f"Its {k['designs']} designs earned {fmt(k['revenue_per_design'])} each, against "
                           f"{fmt(average)} for the average design; {k['designs_with_sales']} of them sold.",
                    "figures": {x: k[x] for x in ("designs", "designs_with_sales", "revenue",
                                                  "revenue_per_design")} | {"average_revenue_per_design": average},
                    "estimated_revenue_impact": k["revenue_per_design"],
                })
            weak = [k for k in keywords["by_keyword"]
                    if k["designs"] >= 3 and average > 0 and k["revenue_per_design"] <= average / 4]
            weak.sort(key=lambda k: (k["revenue_per_design"], -k["designs"], k["keyword"]))
            for k in weak[:2]:
                recs.append({
                    "type": "rework_keyword",
                    "keyword": k["keyword"],
                    "action": f"Stop adding \"{k['keyword']}\" designs, or rework their titles and tags.",
                    "why": f"{k['designs']} designs carry it and earned {fmt(k['revenue_per_design'])} each "
                           f"(average design {fmt(average)}); {k['designs'] - k['designs_with_sales']} never sold.",
                    "figures": {x: k[x] for x in ("designs", "designs_with_sales", "revenue",
                                                  "revenue_per_design")} | {"average_revenue_per_design": average},
                    "estimated_revenue_impact": None,
                })
            types = [t for t in keywords["by_product_type"] if t["designs"] >= 3]
            if len(types) >= 2:
                best = max(types, key=lambda t: (t["revenue_per_design"], t["product_type"]))
                if best["revenue_per_design"] and best["revenue_per_design"] > average:
                    recs.append({
                        "type": "expand_product_type",
                        "product_type": best["product_type"],
                        "action": f"Put your best designs on more {best['product_type']} products.",
                        "why": f"{best['product_type']} earns {fmt(best['revenue_per_design'])} per design "
                               f"against {fmt(average)} overall, over {best['designs']} designs.",
                        "figures": {x: best[x] for x in ("designs", "revenue", "revenue_per_design")},
                        "estimated_revenue_impact": best["revenue_per_design"],
                    })
        if focus.get("found") and focus.get("conversion_vs_catalogue_points") is not None \
                and focus["conversion_vs_catalogue_points"] < 0 and focus["sessions"] >= self.min_sessions \
                and not any(r.get("asin") == focus["asin"] for r in recs):
            gap = self.conversion(self.total) - self.conversion(self.item_sums[focus["asin"]])
            missed = gap * focus["sessions"]
            price = self.item_sums[focus["asin"]].revenue / focus["units"] if focus["units"] > 0 \
                else self.catalogue_price()
            recs.append({
                "type": "improve_focus_conversion",
                "asin": focus["asin"],
                "action": f"Improve the conversion of {focus['asin']}, the product you asked about.",
                "why": f"It converts at {focus['conversion_percent']}% against {cat_conv_pct}% for the catalogue "
                       f"({focus['sessions']:,} sessions); closing the gap is worth about "
                       f"{missed.quantize(TENTH, ROUND_HALF_UP)} units.",
                "figures": {"sessions": focus["sessions"], "conversion_percent": focus["conversion_percent"],
                            "catalogue_conversion_percent": cat_conv_pct},
                "estimated_revenue_impact": money(missed * price) if price else None,
            })
        if len(self.by_revenue) >= 3 and self.total.revenue > 0:
            top = self.by_revenue[0]
            share = percent(self.item_sums[top].revenue, self.total.revenue)
            if share >= 50:
                recs.append({
                    "type": "reduce_concentration",
                    "asin": top,
                    "action": f"Reduce your dependence on {top} ({_short(self.agg.items[top][5])}): build up "
                              "your next best sellers.",
                    "why": f"It brings {share}% of all revenue; one lost Buy Box or listing suppression would "
                           "cost most of your sales.",
                    "figures": {"revenue_share_percent": share, "revenue": money(self.item_sums[top].revenue)},
                    "estimated_revenue_impact": None,
                })
        # Actions with a money estimate first, largest first; the others keep their order after them.
        recs.sort(key=lambda r: (r["estimated_revenue_impact"] is None, -(r["estimated_revenue_impact"] or 0)))
        recs = recs[: self.max_recommendations]
        for i, rec in enumerate(recs, start=1):
            rec["rank"] = i
        return recs


def _short(title, limit=60):
    title = title or "no title"
    return title if len(title) <= limit else title[: limit - 1] + "…"


def _period_start(day, grain):
    if grain == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def _period_end(start, grain):
    if grain == "week":
        return start + timedelta(days=6)
    nxt = date(start.year + (start.month == 12), start.month % 12 + 1, 1)
    return nxt - timedelta(days=1)


def _period_label(start, grain):
    if grain == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{start.year}-{start.month:02d}"
