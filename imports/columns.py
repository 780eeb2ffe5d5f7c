"""The columns each import expects, header matching, and the coercion of one cell value.

Coercers return the clean value or raise RowProblem with a message for the uploader. They run 700k times
per large import, so the common case (a str or a number already of the right kind) is tested first."""

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import NamedTuple

CENT = Decimal("0.01")
MAX_PRICE = Decimal("9999999999.99")
MAX_STOCK = 10 ** 12
CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


HASHED_FIELDS = ("name", "brand", "category", "description", "barcode", "price", "stock")
FLAT_FIELDS = ("code", "name", "brand", "category", "description", "price", "stock", "barcode")


class Chunk(NamedTuple):
    """The validated rows of one stretch of a product file, which the job commits together."""

    valid: list  # (row number, values in FLAT_FIELDS order, digest), in row order
    problems: list  # (row number, column, value, message) of the rejected rows
    rows: int  # rows read, valid and rejected
    last_row: int  # the number of the last of them: the checkpoint


def row_digest(clean) -> int:
    """A signed 64-bit digest of a product's imported fields (fits a BigIntegerField on every database):
    an unchanged row is recognised without comparing columns."""
    data = "\x1f".join(str(clean[name]) for name in HASHED_FIELDS).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big", signed=True)


class RowProblem(ValueError):
    pass


@dataclass(frozen=True)
class Column:
    name: str
    required: bool = False
    aliases: tuple = ()
    max_length: int | None = None
    coerce: object = None
    help: str = ""
    keys: tuple = field(init=False, default=())

    def __post_init__(self):
        object.__setattr__(self, "keys", tuple({header_key(n) for n in (self.name, *self.aliases)}))


def header_key(title):
    """Headers match whatever their case and spacing: ' Product  Code' ~ 'product_code' ~ 'PRODUCTCODE'."""
    return re.sub(r"[\s_\-]+", "", str(title)).lower()


def text(value, column):
    if value is None:
        return ""
    if isinstance(value, str):
        cleaned = value.strip()
    elif isinstance(value, bool):
        cleaned = "TRUE" if value else "FALSE"
    elif isinstance(value, float) and value.is_integer():
        cleaned = str(int(value))  # a code typed as 1234 comes back from Excel as 1234.0
    elif isinstance(value, (datetime, date)):
        cleaned = value.isoformat()
    else:
        cleaned = str(value)
    if column.max_length and len(cleaned) > column.max_length:
        raise RowProblem(f"is {len(cleaned)} characters long; at most {column.max_length} are allowed")
    if CONTROL_RE.search(cleaned):
        raise RowProblem("contains control characters; remove them")
    return cleaned


def money(value, column):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value != value or value in (float("inf"), float("-inf")):
            raise RowProblem("is not a number")
        amount = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    else:
        raw = text(value, column)
        if not raw:
            raise RowProblem("is required")
        if "," in raw:
            raise RowProblem("must use a dot as the decimal separator and no thousands separator (e.g. 1234.50)")
        try:
            amount = Decimal(raw)
        except InvalidOperation:
            raise RowProblem("is not a number") from None
        if not amount.is_finite():
            raise RowProblem("is not a number")
    if amount < 0:
        raise RowProblem("must not be negative")
    amount = amount.quantize(CENT, rounding=ROUND_HALF_UP)
    if amount > MAX_PRICE:
        raise RowProblem(f"is larger than {MAX_PRICE}")
    return amount


def quantity(value, column):
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float):
        if not value.is_integer():
            raise RowProblem("must be a whole number")
        number = int(value)
    else:
        raw = text(value, column)
        if not raw:
            raise RowProblem("is required")
        try:
            number = int(raw)
        except ValueError:
            try:
                as_decimal = Decimal(raw)
            except InvalidOperation:
                raise RowProblem("is not a whole number") from None
            if not as_decimal.is_finite() or as_decimal != as_decimal.to_integral_value():
                raise RowProblem("must be a whole number") from None
            number = int(as_decimal)
    if number < 0:
        raise RowProblem("must not be negative (negative stock is not allowed)")
    if number > MAX_STOCK:
        raise RowProblem(f"is larger than {MAX_STOCK}")
    return number


def barcode(value, column):
    cleaned = text(value, column)
    if cleaned and not (cleaned.isdigit() and 8 <= len(cleaned) <= 14):
        raise RowProblem("must be 8 to 14 digits (EAN/UPC/GTIN)")
    return cleaned


def email(value, column):
    cleaned = text(value, column)
    if cleaned and not EMAIL_RE.match(cleaned):
        raise RowProblem("is not an email address")
    return cleaned


PRODUCT_COLUMNS = (
    Column("code", required=True, aliases=("sku", "product code", "part number"), max_length=64, coerce=text),
    Column("name", required=True, aliases=("product name", "title"), max_length=255, coerce=text),
    Column("brand", aliases=("manufacturer",), max_length=120, coerce=text),
    Column("category", max_length=120, coerce=text),
    Column("description", max_length=10000, coerce=text),
    Column("price", required=True, coerce=money),
    Column("stock", required=True, aliases=("quantity", "qty", "stock quantity"), coerce=quantity),
    Column("barcode", aliases=("ean", "gtin", "upc"), coerce=barcode),
)

DEALER_COLUMNS = (
    Column("code", required=True, aliases=("dealer code",), max_length=64, coerce=text),
    Column("name", required=True, aliases=("dealer name", "company"), max_length=255, coerce=text),
    Column("contact_name", aliases=("contact", "contact person"), max_length=255, coerce=text),
    Column("email", aliases=("e-mail", "mail"), max_length=254, coerce=email),
    Column("phone", aliases=("telephone", "tel"), max_length=40, coerce=text),
    Column("address", aliases=("street",), max_length=255, coerce=text),
    Column("city", max_length=120, coerce=text),
    Column("postal_code", aliases=("zip", "postcode", "zip code"), max_length=20, coerce=text),
    Column("country", max_length=80, coerce=text),
)


@dataclass
class HeaderMatch:
    positions: dict  # column name -> index in the row
    problems: list
    warnings: list


def match_header(header, columns):
    """Map the file's header to our columns: every problem and warning, in words."""
    problems, warnings = [], []
    if not header or not any(str(h).strip() for h in header if h is not None):
        return HeaderMatch({}, ["The first row is empty: it must hold the column titles ("
                                + ", ".join(c.name for c in columns) + ")."], [])
    by_key = {}
    for column in columns:
        for key in column.keys:
            by_key[key] = column
    positions = {}
    for index, title in enumerate(header):
        if title is None or not str(title).strip():
            continue
        column = by_key.get(header_key(title))
        if column is None:
            warnings.append(f"Unknown column '{str(title).strip()}' is ignored.")
            continue
        if column.name in positions:
            problems.append(f"Column '{column.name}' appears twice (columns {positions[column.name] + 1} "
                            f"and {index + 1}); keep one.")
            continue
        positions[column.name] = index
    missing = [c.name for c in columns if c.required and c.name not in positions]
    if missing:
        found = ", ".join(f"'{str(h).strip()}'" for h in header if h is not None and str(h).strip())
        problems.append(f"Required column{'s' if len(missing) > 1 else ''} missing: {', '.join(missing)}. "
                        f"The header row has {found}. Column titles are matched ignoring case and spaces.")
    return HeaderMatch(positions, problems, warnings)


def coerce_row(values, positions, columns):
    """(clean dict, [(column, raw value, message)]) for one row."""
    clean, problems = {}, []
    width = len(values)
    for column in columns:
        index = positions.get(column.name)
        raw = values[index] if index is not None and index < width else None
        if type(raw) is str:
            raw = raw.strip()
            if column.coerce is text and raw:
                # The common case, inline: a non-empty string for a text column.
                if column.max_length and len(raw) > column.max_length:
                    problems.append((column.name, raw, f"{column.name} is {len(raw)} characters long; "
                                                       f"at most {column.max_length} are allowed"))
                elif CONTROL_RE.search(raw):
                    problems.append((column.name, raw, f"{column.name} contains control characters; remove them"))
                else:
                    clean[column.name] = raw
                continue
        if raw is None or raw == "":
            if column.required:
                problems.append((column.name, "", f"{column.name} is required"))
            else:
                clean[column.name] = ""
            continue
        try:
            clean[column.name] = column.coerce(raw, column)
        except RowProblem as exc:
            problems.append((column.name, raw, f"{column.name} {exc}"))
    return clean, problems


def product_coercer(positions):
    """A fast `coerce_row` for product rows, built once per import for the file's column positions.

    Returns f(values) -> (clean, problems, digest). For a valid row, clean is a tuple in FLAT_FIELDS
    order with the price as text (cheaper to build, to pickle from a reader process and to skip when
    unchanged than a dict with a Decimal) and digest is row_digest of it; for a rejected row, clean is
    coerce_row's dict and digest None. The common row (non-empty strings, a float or int price, an int
    stock and barcode) is checked inline with one control-character search for all its text; anything
    else goes to the general `coerce_row`, so the rules and messages are the same."""
    columns = {column.name: column for column in PRODUCT_COLUMNS}
    names = [c.name for c in PRODUCT_COLUMNS]
    width = max(positions.values()) + 1
    at = {name: positions.get(name, width) for name in names}  # a missing column reads past the end
    i_code, i_name, i_brand, i_category, i_description, i_price, i_stock, i_barcode = (
        at[name] for name in ("code", "name", "brand", "category", "description", "price", "stock", "barcode"))
    max_code, max_name, max_brand, max_category, max_description = (
        columns[name].max_length for name in ("code", "name", "brand", "category", "description"))
    control = CONTROL_RE.search
    blake2b = hashlib.blake2b
    from_bytes = int.from_bytes
    Dec = Decimal
    cent, half_up, max_stock = CENT, ROUND_HALF_UP, MAX_STOCK
    max_float_price = float(MAX_PRICE)  # 9999999999.99 is exactly the float a file's "9999999999.99" reads as
    max_int_price = int(MAX_PRICE)
    # A row shorter than this lacks a cell coerce() reads (trailing empty cells are not in `values`).
    needed = max(at.values()) + 1
    padding = [None] * needed

    def slow(values):
        clean, problems = coerce_row(values, positions, PRODUCT_COLUMNS)
        if problems:
            return clean, problems, None
        return tuple(str(clean[name]) if name == "price" else clean[name] for name in FLAT_FIELDS), (), \
            row_digest(clean)

    def coerce(values):
        if len(values) < needed:
            values = values + padding[len(values):]
        code, name, brand, category, description = (
            values[i_code], values[i_name], values[i_brand], values[i_category], values[i_description])
        price, stock, ean = values[i_price], values[i_stock], values[i_barcode]
        if type(code) is not str or type(name) is not str:
            return slow(values)
        code, name = code.strip(), name.strip()
        if brand is None:
            brand = ""
        elif type(brand) is str:
            brand = brand.strip()
        else:
            return slow(values)
        if category is None:
            category = ""
        elif type(category) is str:
            category = category.strip()
        else:
            return slow(values)
        if description is None:
            description = ""
        elif type(description) is str:
            description = description.strip()
        else:
            return slow(values)
        if (not code or not name or len(code) > max_code or len(name) > max_name or len(brand) > max_brand
                or len(category) > max_category or len(description) > max_description):
            return slow(values)
        joined = code + name + brand + category + description
        # isprintable() is False for every character CONTROL_RE finds (and for tabs, newlines, ...): only
        # then is the regex needed.
        if not joined.isprintable() and control(joined):
            return slow(values)
        kind = type(price)
        if kind is float:
            if not (0 <= price <= max_float_price):  # also NaN
                return slow(values)
            price_text = repr(price)
            dot = price_text.find(".")
            if dot < 0 or "e" in price_text or price_text[0] == "-" or len(price_text) - dot > 3:
                # More than two decimals (to be rounded), an exponent, -0.0: the exact way.
                price_text = str(Dec(price_text).quantize(cent, rounding=half_up))
            else:
                # At most two decimals: quantizing only pads, so the text is the cents value already
                # (str(Decimal(repr(x)).quantize(0.01)) == this, without building Decimals).
                price_text = price_text if len(price_text) - dot == 3 else price_text + "0"
        elif kind is int:
            if not 0 <= price <= max_int_price:
                return slow(values)
            price_text = f"{price}.00"
        else:
            return slow(values)
        if type(stock) is not int or not 0 <= stock <= max_stock:
            return slow(values)
        kind = type(ean)
        if ean is None:
            ean = ""
        elif kind is int:
            ean = str(ean)
            if not (8 <= len(ean) <= 14) or ean[0] == "-":
                return slow(values)
        elif kind is str:
            ean = ean.strip()
            if ean and not (ean.isdigit() and 8 <= len(ean) <= 14):
                return slow(values)
        else:
            return slow(values)
        digest = from_bytes(blake2b(
            f"{name}\x1f{brand}\x1f{category}\x1f{description}\x1f{ean}\x1f{price_text}\x1f{stock}".encode(
                "utf-8", "surrogatepass"), digest_size=8).digest(), "big", signed=True)
        return (code, name, brand, category, description, price_text, stock, ean), (), digest

    return coerce
