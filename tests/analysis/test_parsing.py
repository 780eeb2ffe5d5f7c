"""The reading rules on their own: numbers, dates, column names, delimiters, encodings, ASINs and URLs."""

from datetime import date
from decimal import Decimal

import pytest

from analysis.csvparse import DESIGNS, REVENUE, DateReader, ValueProblem, fold, parse_number, sniff
from analysis.marketplaces import MARKETPLACES, InvalidInput, parse_asin_or_url
from tests.analysis.factories import DE_HEADER, US_HEADER, csv_bytes

US, DE, JP = MARKETPLACES["US"], MARKETPLACES["DE"], MARKETPLACES["JP"]


@pytest.mark.parametrize("raw, decimal_comma, expected, currency", [
    ("$1,234.56", False, "1234.56", "$"),
    ("1.234,56 €", True, "1234.56", "EUR"),
    ("€1.234,56", True, "1234.56", "EUR"),
    ("1 234,56 €", True, "1234.56", "EUR"),
    ("1\u00a0234,56\u00a0€", True, "1234.56", "EUR"),  # no-break spaces, as French exports print them
    ("EUR 1.234.567,89", True, "1234567.89", "EUR"),
    ("£12.50", False, "12.50", "GBP"),
    ("¥1,234", False, "1234", "JPY"),
    ("US$ 99.99", False, "99.99", "USD"),
    ("1'234.50", False, "1234.50", None),
    ("(12.50)", False, "-12.50", None),
    ("-$3.00", False, "-3.00", "$"),
    ("$-3.00", False, "-3.00", "$"),
    ("12,5", False, "12.5", None),  # one comma, one decimal: a decimal comma whatever the file says
    ("1,234", False, "1234", None),  # ambiguous: the file's convention (point) decides
    ("1,234", True, "1.234", None),
    ("1.234", True, "1234", None),
    ("1,234,567", True, "1234567", None),
    (".5", False, "0.5", None),
    ("0", False, "0", None),
])
def test_money_values(raw, decimal_comma, expected, currency):
    assert parse_number(raw, decimal_comma) == (Decimal(expected), currency)


@pytest.mark.parametrize("raw, decimal_comma, expected", [
    ("1,234", False, 1234), ("1.234", True, 1234), ("1.234", False, 1234), ("1,234", True, 1234), ("17", True, 17),
])
def test_counts_are_whole_numbers_so_a_three_digit_group_is_thousands(raw, decimal_comma, expected):
    assert parse_number(raw, decimal_comma, integer=True)[0] == expected


@pytest.mark.parametrize("raw, reason", [
    ("", "empty"), ("   ", "empty"), ("abc", "not a number"), ("12%", "not a number"), ("12 apples", "not a number"),
    ("1,2,3.4.5", "not a number"), ("N/A", "not a number"),
])
def test_bad_numbers_say_why(raw, reason):
    with pytest.raises(ValueProblem, match=reason):
        parse_number(raw, False)


def test_a_fraction_is_not_a_count():
    with pytest.raises(ValueProblem, match="not a whole number"):
        parse_number("2.5", False, integer=True)


@pytest.mark.parametrize("order, raw, expected", [
    ("MDY", "3/1/2024", date(2024, 3, 1)),
    ("DMY", "3/1/2024", date(2024, 1, 3)),
    ("MDY", "01.03.2024", date(2024, 3, 1)),  # dots are always day.month.year
    ("DMY", "2024-03-01", date(2024, 3, 1)),
    ("MDY", "2024-03-01T23:59:59+00:00", date(2024, 3, 1)),
    ("MDY", "2024/03/01", date(2024, 3, 1)),
    ("MDY", "Mar 1, 2024", date(2024, 3, 1)),
    ("MDY", "March 1, 2024 12:00:00 AM PST", date(2024, 3, 1)),
    ("DMY", "1-Mar-24", date(2024, 3, 1)),
    ("DMY", "01/03/24", date(2024, 3, 1)),
])
def test_dates(order, raw, expected):
    assert DateReader(order)(raw) == expected


@pytest.mark.parametrize("raw", ["2024-13-01", "31/02/2024", "yesterday", ""])
def test_bad_dates(raw):
    with pytest.raises(ValueProblem):
        DateReader("DMY")(raw)


def test_column_names_are_folded():
    assert fold("(Child) ASIN") == "child asin"
    assert fold("\ufeffSitzungen – Summe") == "sitzungen summe"
    assert fold("Unités commandées") == "unites commandees"


def test_sniff_a_us_business_report():
    head = csv_bytes([US_HEADER, ["3/13/2024", "B0PARENT00", "B0AAAAAAA1", "Mug", "1,234", "1%", "2,000", "1%",
                                  "100%", "12", "1%", "$1,234.56", "12"]])
    layout = sniff(head, True, REVENUE, US)
    assert layout.delimiter == "," and layout.encoding == "utf-8"
    # Child wins over parent; the B2B and percentage columns are not mistaken for the totals.
    assert layout.describe()["columns"] == {
        "asin": "(Child) ASIN", "title": "Title", "date": "Date", "sessions": "Sessions - Total",
        "page_views": "Page Views - Total", "units": "Units Ordered", "revenue": "Ordered Product Sales",
    }
    assert layout.date_order == "MDY" and layout.decimal_comma is False


def test_sniff_a_german_export_in_windows_encoding_even_on_the_us_marketplace():
    head = csv_bytes([DE_HEADER, ["13.03.2024", "B0PARENT00", "B0AAAAAAA1", "Tasse für Kaffee", "1.234", "2.000", "7",
                                  "1.234,56 €"]], delimiter=";", encoding="cp1252")
    layout = sniff(head, True, REVENUE, US)
    assert (layout.delimiter, layout.encoding, layout.decimal_comma, layout.date_order) == (";", "cp1252", True, "DMY")


def test_sniff_utf16_tab_separated_with_title_lines_before_the_header():
    text = "Sales report\r\nGenerated 2024-04-01\r\nasin\tquantity\titem-price\r\nB0AAAAAAA1\t2\t19.98\r\n"
    layout = sniff(text.encode("utf-16"), True, REVENUE, US)
    assert layout.encoding == "utf-16" and layout.delimiter == "\t" and layout.skip_rows == 2


def test_sniff_names_the_missing_columns_and_lists_those_found():
    head = csv_bytes([["Date", "ASIN", "Title", "Sessions"], ["2024-03-01", "B0AAAAAAA1", "Mug", "3"]])
    with pytest.raises(InvalidInput) as err:
        sniff(head, True, REVENUE, US)
    message = str(err.value)
    assert '"Units Ordered"' in message and '"Ordered Product Sales"' in message
    assert 'Columns found: "Date", "ASIN", "Title", "Sessions"' in message


def test_design_file_needs_keywords_or_product_type():
    head = csv_bytes([["ASIN", "Design Name"], ["B0AAAAAAA1", "Cat"]])
    with pytest.raises(InvalidInput, match='at least one of "Product Type" or "Keywords"'):
        sniff(head, True, DESIGNS, US)


@pytest.mark.parametrize("value, asin, market", [
    ("B0D9C28SVB", "B0D9C28SVB", None),
    (" b0d9c28svb ", "B0D9C28SVB", None),
    ("0316769487", "0316769487", None),
    ("https://www.amazon.com/dp/B0D9C28SVB", "B0D9C28SVB", "US"),
    ("https://www.amazon.de/-/en/Funny-Cat-Shirt/dp/B0D9C28SVB/ref=sr_1_1?crid=2X&th=1", "B0D9C28SVB", "DE"),
    ("amazon.co.uk/gp/product/B0D9C28SVB", "B0D9C28SVB", "UK"),
    ("https://www.amazon.co.jp/gp/aw/d/B0D9C28SVB", "B0D9C28SVB", "JP"),
    ("https://www.amazon.com/gp/offer-listing/B0D9C28SVB?condition=new", "B0D9C28SVB", "US"),
])
def test_asin_or_url(value, asin, market):
    assert parse_asin_or_url(value) == (asin, market)


@pytest.mark.parametrize("value, message", [
    ("", "Give the product's ASIN"),
    ("B0D9C28", "not an ASIN"),
    ("https://example.com/dp/B0D9C28SVB", "not an Amazon store domain"),
    ("https://amzn.to/3xYzAbC", "short links cannot be resolved"),
    ("https://www.amazon.com/s?k=cat+shirt", "No ASIN found"),
    ("ftp://amazon.com/dp/B0D9C28SVB", "neither an ASIN nor an http"),
])
def test_bad_asin_or_url(value, message):
    with pytest.raises(InvalidInput, match=message):
        parse_asin_or_url(value)
