"""Reading sellers' CSV exports: encoding, delimiter, header row, column names, numbers, dates.

Two uses with one set of rules:
- `sniff()` looks only at the first bytes of an upload, so the API can answer 400 (not a CSV, missing
  columns, no data) before any job starts, without parsing a file that may have a million rows;
- `Reader` streams the whole file in the job, one row at a time, and collects row errors instead of
  stopping at the first one.

Amazon's exports differ by report, marketplace and year ("Sessions" became "Sessions - Total", German
Seller Central writes "Sitzungen – Summe" and "1.234,56 €"). Column names are matched after folding case,
accents and punctuation; numbers and dates are read with the conventions the file itself shows, and the
marketplace's conventions only where a value is ambiguous ("1,234", "03/04/2024").
"""

import codecs
import csv
import io
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

from .marketplaces import InvalidInput, Marketplace

SAMPLE_BYTES = 256 * 1024
DELIMITERS = (",", ";", "\t", "|")
HEADER_SEARCH_ROWS = 10


def fold(name: str) -> str:
    """'(Child) ASIN' -> 'child asin'; 'Sitzungen – Summe' -> 'sitzungen summe'; 'Unités' -> 'unites'."""
    text = unicodedata.normalize("NFKD", name.replace("\ufeff", ""))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    return " ".join(re.findall(r"[a-z0-9]+", text))


@dataclass(frozen=True)
class Column:
    key: str
    label: str  # the name Amazon's English export uses, for messages
    aliases: tuple
    required: bool = False

    def matches(self):
        return tuple(fold(a) for a in (self.label, *self.aliases))


@dataclass(frozen=True)
class Spec:
    field_name: str  # the upload's form field, named in every message
    columns: tuple
    # Groups of keys of which at least one must be present.
    one_of: tuple = ()

    def column(self, key):
        return next(c for c in self.columns if c.key == key)


REVENUE = Spec(
    "revenue_csv",
    (
        # Child before plain before parent: a Business Report carries both, and sales belong to children.
        Column("asin", "(Child) ASIN", (
            "Child ASIN", "ASIN", "(Untergeordnete) ASIN", "Untergeordnete ASIN", "ASIN (enfant)",
            "ASIN enfant", "ASIN (figlio)", "ASIN figlio", "ASIN (secundario)", "ASIN secundario",
            "ASIN (hijo)", "ASIN (Child)", "Product ASIN", "(Parent) ASIN", "Parent ASIN",
            "(Übergeordnete) ASIN",
        ), required=True),
        Column("title", "Title", (
            "Titel", "Titre", "Titolo", "Título", "Product Name", "Product Title", "Item Name", "product-name",
            "Name",
        )),
        Column("date", "Date", (
            "Day", "Datum", "Fecha", "Data", "purchase-date", "Purchase Date", "Order Date", "Posted Date",
            "Shipment Date", "Start Date", "Date/Time",
        )),
        Column("sessions", "Sessions - Total", (
            "Sessions", "Sitzungen – Summe", "Sitzungen - Summe", "Sitzungen", "Sessions – Total",
            "Sessioni - Totale", "Sesiones - Total", "Sessions - Total - B2C",
        )),
        Column("page_views", "Page Views - Total", (
            "Page Views", "Seitenaufrufe – Summe", "Seitenaufrufe - Summe", "Seitenaufrufe",
            "Pages vues – Total", "Pages vues - Total", "Pages vues", "Visualizzazioni di pagina - Totale",
            "Páginas vistas - Total",
        )),
        Column("units", "Units Ordered", (
            "Units", "Units Sold", "Quantity", "quantity-purchased", "Quantity Purchased", "Qty",
            "Bestellte Einheiten", "Unités commandées", "Unità ordinate", "Unidades pedidas",
        ), required=True),
        Column("revenue", "Ordered Product Sales", (
            "Product Sales", "Sales", "Revenue", "Total Sales", "item-price", "Item Price",
            "Umsatz bestellter Produkte", "Umsatz", "Ventes de produits commandés",
            "Vendite prodotti ordinati", "Ventas de productos pedidos",
        ), required=True),
        Column("currency", "currency", ("Currency", "Währung", "Devise", "Valuta", "Moneda")),
        # Order reports list cancelled orders too; they are not sales.
        Column("status", "item-status", ("Item Status", "order-status", "Order Status")),
    ),
)

DESIGNS = Spec(
    "design_csv",
    (
        Column("asin", "ASIN", ("(Child) ASIN", "Child ASIN", "Product ASIN", "Listing ASIN"), required=True),
        Column("name", "Design Name", (
            "Name", "Design", "Design Title", "Title", "Listing Title", "Product Name",
        )),
        Column("product_type", "Product Type", (
            "Type", "Product", "Category", "Product Category", "Item Type", "Produkttyp",
        )),
        Column("keywords", "Keywords", (
            "Tags", "Keyword", "Tag", "Search Terms", "Search Keywords", "Generic Keywords", "Keywords/Tags",
        )),
    ),
    one_of=(("product_type", "keywords"),),
)


@dataclass
class Layout:
    """How to read one file, decided from its first bytes."""

    encoding: str
    delimiter: str
    skip_rows: int  # CSV records before the header row (a report's title lines)
    headers: list
    columns: dict  # key -> index in the row
    decimal_comma: bool
    date_order: str
    sample_rows: int = 0

    def describe(self):
        return {
            "encoding": self.encoding,
            "delimiter": {"\t": "tab"}.get(self.delimiter, self.delimiter),
            "header_line": self.skip_rows + 1,
            "columns": {key: self.headers[i] for key, i in self.columns.items()},
            "number_format": "1.234,56" if self.decimal_comma else "1,234.56",
            "date_order": self.date_order,
        }


# -- encoding and binary detection ------------------------------------------------------------------
_MAGIC = [
    (b"PK\x03\x04", "an Excel workbook (.xlsx) or a zip archive"),
    (b"\xd0\xcf\x11\xe0", "an old Excel workbook (.xls)"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip archive"),
]


def detect_encoding(head: bytes, complete: bool, field_name: str) -> tuple[str, str]:
    """Return (encoding, decoded sample) or raise InvalidInput when this is not text."""
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise InvalidInput(
                f"{field_name} is {what}, not a CSV file. Export the report as CSV (in Seller Central: "
                "Download (.csv)) and upload that."
            )
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    elif head.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    else:
        if b"\x00" in head:
            raise InvalidInput(f"{field_name} is a binary file, not a CSV file.")
        encoding = "utf-8"
        try:
            codecs.getincrementaldecoder("utf-8")().decode(head, final=complete)
        except UnicodeDecodeError:
            # Excel on Windows saves CSV in the ANSI code page.
            encoding = "cp1252"
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(head, final=complete)
    if not complete:
        # Drop the last, probably cut, line.
        text = text[: text.rfind("\n") + 1] if "\n" in text else text
    lowered = text.lstrip()[:200].lower()
    if lowered.startswith(("<!doctype html", "<html", "<?xml")):
        raise InvalidInput(f"{field_name} is an HTML or XML document, not a CSV file.")
    return encoding, text


# -- header detection -------------------------------------------------------------------------------
def _match_columns(spec: Spec, row) -> dict:
    folded = [fold(cell) for cell in row]
    found = {}
    for column in spec.columns:
        for alias in column.matches():
            if alias in folded:
                found[column.key] = folded.index(alias)
                break
    return found


def _rows(text, delimiter, limit=None):
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows = []
    try:
        for row in reader:
            rows.append(row)
            if limit and len(rows) >= limit:
                break
    except csv.Error:
        pass
    return rows


def _missing_message(spec, found, headers):
    missing = [c for c in spec.columns if c.required and c.key not in found]
    parts = []
    for column in missing:
        others = ", ".join(f'"{a}"' for a in column.aliases[:6])
        parts.append(f'"{column.label}" (or {others})')
    for group in spec.one_of:
        if not any(key in found for key in group):
            labels = " or ".join(f'"{spec.column(k).label}"' for k in group)
            parts.append(f"at least one of {labels}")
    shown = ", ".join(f'"{h}"' for h in headers[:30] if h.strip()) or "none"
    return f"{spec.field_name} is missing required column(s): {'; '.join(parts)}. Columns found: {shown}."


def sniff(head: bytes, complete: bool, spec: Spec, market: Marketplace) -> Layout:
    """Decide how to read a file from its first bytes, or raise InvalidInput saying what is wrong."""
    name = spec.field_name
    if not head.strip():
        raise InvalidInput(f"{name} is empty.")
    encoding, text = detect_encoding(head, complete, name)
    best = None  # (score, delimiter, skip, header, found)
    for delimiter in DELIMITERS:
        rows = _rows(text, delimiter, limit=HEADER_SEARCH_ROWS)
        non_empty = [(i, r) for i, r in enumerate(rows) if any(c.strip() for c in r)]
        for i, row in non_empty:
            found = _match_columns(spec, row)
            if "asin" in found:
                score = (1, len(found), len(row))
                break
        else:
            i, row = non_empty[0] if non_empty else (0, [])
            found = _match_columns(spec, row)
            score = (0, len(found), len(row))
        if best is None or score > best[0]:
            best = (score, delimiter, i, row, found)
    score, delimiter, skip, headers, found = best
    if score[2] < 2 and not found:
        raise InvalidInput(
            f"{name} is not a CSV table: no comma, semicolon, tab or | separated columns were found in its "
            "first line. Upload the report exported as CSV."
        )
    missing = [c for c in spec.columns if c.required and c.key not in found]
    if missing or any(not any(k in found for k in group) for group in spec.one_of):
        raise InvalidInput(_missing_message(spec, found, headers))
    headers = [h.replace("\ufeff", "").strip() for h in headers]
    data = _rows(text, delimiter)[skip + 1:]
    data = [r for r in data if any(c.strip() for c in r)]
    if complete and not data:
        raise InvalidInput(f"{name} has a header row but no data rows.")
    numeric = [found[k] for k in ("revenue", "units", "sessions", "page_views") if k in found]
    decimal_comma = _decimal_comma(data, numeric, market.decimal_comma)
    date_order = _date_order(data, found.get("date"), market.date_order)
    return Layout(encoding, delimiter, skip, headers, found, decimal_comma, date_order, len(data))


def _decimal_comma(rows, indexes, default):
    votes = Counter()
    for row in rows:
        for i in indexes:
            if i < len(row):
                vote = _separator_vote(row[i])
                if vote:
                    votes[vote] += 1
    if votes["comma"] != votes["point"]:
        return votes["comma"] > votes["point"]
    return default


_SEP_TAIL = re.compile(r"\d([.,])(\d+)\D*$")


def _separator_vote(value):
    """Which character this value uses as its decimal separator, when the value shows it."""
    s = value.strip()
    if "," in s and "." in s:
        return "comma" if s.rfind(",") > s.rfind(".") else "point"
    for sep, name, other in ((",", "comma", "point"), (".", "point", "comma")):
        n = s.count(sep)
        if n > 1:
            return other  # repeated: a thousands separator
        if n == 1:
            match = _SEP_TAIL.search(s)
            if match and len(match.group(2)) in (1, 2):
                return name
    return None


_DMY_LIKE = re.compile(r"^\s*(\d{1,2})([./-])(\d{1,2})[./-](\d{2}|\d{4})(?!\d)")


def _date_order(rows, index, default):
    if index is None:
        return default
    votes = Counter()
    for row in rows:
        if index < len(row):
            match = _DMY_LIKE.match(row[index])
            if not match:
                continue
            first, sep, second = int(match.group(1)), match.group(2), int(match.group(3))
            if sep == "." or first > 12:
                votes["DMY"] += 1
            elif second > 12:
                votes["MDY"] += 1
    if votes["DMY"] != votes["MDY"]:
        return "DMY" if votes["DMY"] > votes["MDY"] else "MDY"
    return default if default in ("DMY", "MDY") else "DMY"


# -- values -----------------------------------------------------------------------------------------
class ValueProblem(ValueError):
    pass


# Currency tokens as printed before or after amounts. "$" alone is any dollar: the marketplace decides.
CURRENCY_TOKENS = {
    "$": "$", "US$": "USD", "USD": "USD", "€": "EUR", "EUR": "EUR", "£": "GBP", "GBP": "GBP",
    "¥": "JPY", "￥": "JPY", "円": "JPY", "JPY": "JPY", "C$": "CAD", "CA$": "CAD", "CAD": "CAD",
    "A$": "AUD", "AU$": "AUD", "AUD": "AUD", "MX$": "MXN", "MXN": "MXN", "R$": "BRL", "BRL": "BRL",
    "₹": "INR", "RS": "INR", "RS.": "INR", "INR": "INR", "KR": "SEK", "SEK": "SEK", "ZŁ": "PLN",
    "PLN": "PLN", "₺": "TRY", "TL": "TRY", "TRY": "TRY", "AED": "AED", "SAR": "SAR", "EGP": "EGP",
    "S$": "SGD", "SGD": "SGD", "CHF": "CHF",
}
_GROUPING = str.maketrans("", "", " \u00a0\u202f'’")
_MINUS = ("-", "−", "–")


def parse_number(raw: str, decimal_comma: bool, integer: bool = False):
    """'1.234,56 €' -> (Decimal('1234.56'), 'EUR'). Raises ValueProblem with the reason.

    Thousands separators (',' '.' space, no-break space, apostrophe) are removed; when a value has a
    single separator followed by exactly three digits it is ambiguous and the file's convention decides,
    except for counts, which are whole numbers, so there it can only group thousands."""
    s = raw.strip()
    if not s:
        raise ValueProblem("empty")
    if s.isdigit():
        return Decimal(s), None
    negative = False
    if s[0] == "(" and s[-1] == ")":
        negative, s = True, s[1:-1].strip()
    start = 0
    while start < len(s) and not s[start].isdigit():
        start += 1
    if start < len(s) and start > 0 and s[start - 1] in ".,":
        start -= 1  # ".5", ",5"
    end = len(s)
    while end > start and not s[end - 1].isdigit():
        end -= 1
    if start >= end:
        raise ValueProblem("not a number")
    prefix, number, suffix = s[:start].strip(), s[start:end], s[end:].strip()
    currency = None
    for part in (prefix, suffix):
        if not part:
            continue
        if part[0] in _MINUS or part[-1] in _MINUS:
            negative = True
            part = part.strip("".join(_MINUS)).strip()
        if part.startswith("+"):
            part = part[1:].strip()
        if not part:
            continue
        token = CURRENCY_TOKENS.get(part.upper())
        if token is None:
            raise ValueProblem("not a number")
        currency = token
    number = number.translate(_GROUPING)
    commas, points = number.count(","), number.count(".")
    if commas and points:
        decimal = "," if number.rfind(",") > number.rfind(".") else "."
    elif commas or points:
        sep = "," if commas else "."
        if commas + points > 1:
            decimal = None
        else:
            digits_after = len(number) - number.index(sep) - 1
            if digits_after == 3:
                decimal = None if integer else ("," if decimal_comma else ".")
                if decimal != sep:
                    decimal = None
            else:
                decimal = sep
    else:
        decimal = None
    thousands = {",": ".", ".": ","}.get(decimal) if decimal else None
    if decimal is None:
        number = number.replace(",", "").replace(".", "")
    else:
        if number.count(decimal) > 1:
            raise ValueProblem("not a number")
        number = number.replace(thousands, "").replace(decimal, ".")
    try:
        value = Decimal(number)
    except InvalidOperation:
        raise ValueProblem("not a number")
    if not value.is_finite():
        raise ValueProblem("not a number")
    if negative:
        value = -value
    if integer and value != value.to_integral_value():
        raise ValueProblem("not a whole number")
    return value, currency


_ISO = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?!\d)")
_MONTHS = {m: i for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1)}
_TEXT_MDY = re.compile(r"^([A-Za-z]{3,9})\.?\s+(\d{1,2}),?\s+(\d{4})")
_TEXT_DMY = re.compile(r"^(\d{1,2})[\s-]+([A-Za-z]{3,9})\.?[\s,-]+(\d{2}|\d{4})(?!\d)")


class DateReader:
    """Reads the date formats exports use; remembers each distinct text (a file has few distinct days)."""

    def __init__(self, order: str):
        self.order = order
        self._cache = {}

    def __call__(self, raw: str) -> date:
        value = self._cache.get(raw)
        if value is None:
            value = self._parse(raw)
            if len(self._cache) > 100_000:  # timestamps in order reports are all different
                self._cache.clear()
            self._cache[raw] = value
        return value

    def _parse(self, raw):
        s = raw.strip()
        if not s:
            raise ValueProblem("empty")
        try:
            match = _ISO.match(s)
            if match:
                return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
            match = _DMY_LIKE.match(s)
            if match:
                a, b, year = int(match.group(1)), int(match.group(3)), int(match.group(4))
                if year < 100:
                    year += 2000
                day, month = (a, b) if self.order == "DMY" or match.group(2) == "." else (b, a)
                return date(year, month, day)
            match = _TEXT_MDY.match(s)
            if match and match.group(1)[:3].lower() in _MONTHS:
                return date(int(match.group(3)), _MONTHS[match.group(1)[:3].lower()], int(match.group(2)))
            match = _TEXT_DMY.match(s)
            if match and match.group(2)[:3].lower() in _MONTHS:
                year = int(match.group(3))
                return date(year + 2000 if year < 100 else year, _MONTHS[match.group(2)[:3].lower()],
                            int(match.group(1)))
        except ValueError:
            raise ValueProblem("not a valid calendar date")
        raise ValueProblem("not a date (use e.g. 2024-03-31, 03/31/2024 or 31.03.2024)")


# -- streaming --------------------------------------------------------------------------------------
@dataclass
class RowErrors:
    """Row problems: the first `keep` in detail, all of them counted by reason."""

    keep: int = 200
    count: int = 0
    details: list = field(default_factory=list)
    by_reason: Counter = field(default_factory=Counter)

    def add(self, file, line, column, value, reason):
        self.count += 1
        self.by_reason[f"{file}: {column + ' ' if column else ''}{reason}"] += 1
        if len(self.details) < self.keep:
            self.details.append({
                "file": file, "line": line, "column": column,
                "value": None if value is None else str(value)[:100], "reason": reason,
            })

    def as_dict(self):
        return {
            "count": self.count,
            "shown": len(self.details),
            "by_reason": dict(self.by_reason.most_common(50)),
            "rows": self.details,
        }


class UnreadableFile(Exception):
    pass


class Reader:
    """Iterates a file's data rows as lists of cells, after its header; counts empty rows and reports
    rows with the wrong number of fields (trailing empty cells are forgiven)."""

    MAX_CONSECUTIVE_BROKEN = 1000

    def __init__(self, path, layout: Layout, errors: RowErrors, file_label: str):
        self.path, self.layout, self.errors, self.file_label = path, layout, errors, file_label
        self.rows_read = 0
        self.empty_rows = 0
        self._raw = None

    def bytes_read(self):
        return self._raw.tell() if self._raw else 0

    def __iter__(self):
        width = len(self.layout.headers)
        label = self.file_label
        with open(self.path, "rb") as raw:
            self._raw = raw
            text = io.TextIOWrapper(raw, encoding=self.layout.encoding, errors="replace", newline="")
            reader = csv.reader(text, delimiter=self.layout.delimiter)
            for _ in range(self.layout.skip_rows + 1):
                next(reader, None)
            broken = 0
            while True:
                try:
                    cells = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:
                    broken += 1
                    self.rows_read += 1
                    self.errors.add(label, reader.line_num, None, None, f"unreadable CSV line ({exc})")
                    if broken > self.MAX_CONSECUTIVE_BROKEN:
                        raise UnreadableFile(
                            f"{label}: more than {self.MAX_CONSECUTIVE_BROKEN} unreadable lines in a row "
                            f"near line {reader.line_num}; the file is damaged or not CSV."
                        )
                    continue
                broken = 0
                if len(cells) != width:
                    if not any(cells) or all(not c.strip() for c in cells):
                        self.empty_rows += 1
                        continue
                    if len(cells) > width and not any(c.strip() for c in cells[width:]):
                        cells = cells[:width]
                    else:
                        self.rows_read += 1
                        self.errors.add(label, reader.line_num, None, self.layout.delimiter.join(cells)[:100],
                                        f"has {len(cells)} fields, the header has {width}")
                        continue
                elif all(not c.strip() for c in cells):
                    self.empty_rows += 1
                    continue
                self.rows_read += 1
                yield reader.line_num, cells
        self._raw = None
