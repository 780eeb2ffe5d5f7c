"""Writing one chunk of product rows: products, price and stock history, search index, in plain SQL.

Why not the ORM: bulk_update runs at ~600 rows/s and bulk_create(update_conflicts) at ~20k rows/s here;
executemany (SQLite) and COPY (PostgreSQL) are several times faster, and a chunk is a handful of
statements. The caller wraps a chunk in one transaction together with its checkpoint.

Per chunk: one SELECT finds the existing products by code; each row is then new, changed (its digest
differs), unchanged (same digest: only the "seen" stamp is written, no history) or a duplicate of an
earlier row of the same import (the stamp says which row)."""

import hashlib
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection

CENT = Decimal("0.01")
HASHED_FIELDS = ("name", "brand", "category", "description", "barcode", "price", "stock")
PRODUCT_COLUMNS = ("code", "name", "brand", "category", "description", "barcode", "price", "stock",
                   "row_hash", "seen_in_import", "seen_at_row", "created_at", "updated_at")


def row_digest(clean) -> int:
    """A signed 64-bit digest of the imported fields (fits a BigIntegerField on every database)."""
    data = "\x1f".join(str(clean[name]) for name in HASHED_FIELDS).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big", signed=True)


def _decimal(value):
    if value is None:
        return None
    if not isinstance(value, Decimal):
        value = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    return value.quantize(CENT)


@dataclass
class ChunkResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: list = field(default_factory=list)  # (row_number, column, value, message)


class ProductWriter:
    """Writes chunks for one import. `vendor` picks executemany (SQLite) or COPY (PostgreSQL)."""

    def __init__(self, import_id, now):
        self.import_id = import_id
        self.vendor = connection.vendor
        self.now = now
        self.now_db = connection.ops.adapt_datetimefield_value(now)
        limit = connection.features.max_query_params or 100_000
        self.batch = max(100, min(limit - 10, 30_000))

    # -- helpers -------------------------------------------------------------------------------------
    def _select_in(self, cursor, sql, column, values):
        """Run `sql` (with {where}) for values in batches; yields rows."""
        if not values:
            return
        if self.vendor == "postgresql":
            cursor.execute(sql.format(where=f"{column} = ANY(%s)"), [list(values)])
            yield from cursor.fetchall()
            return
        values = list(values)
        for start in range(0, len(values), self.batch):
            part = values[start:start + self.batch]
            cursor.execute(sql.format(where=f"{column} IN ({', '.join(['%s'] * len(part))})"), part)
            yield from cursor.fetchall()

    def _insert(self, cursor, table, columns, rows):
        if not rows:
            return
        if self.vendor == "postgresql":
            # COPY loads new rows ~3.7x faster than multi-row INSERT on PostgreSQL. It runs on the raw
            # psycopg cursor: the wrapper turns its errors into Django's (IntegrityError, DataError).
            with connection.wrap_database_errors:
                with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            return
        placeholders = ", ".join(["%s"] * len(columns))
        cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})", rows)

    def _close_open(self, cursor, table, product_ids):
        if not product_ids:
            return
        if self.vendor == "postgresql":
            cursor.execute(f"UPDATE {table} SET valid_to = %s WHERE valid_to IS NULL AND product_id = ANY(%s)",
                           [self.now_db, list(product_ids)])
            return
        ids = list(product_ids)
        for start in range(0, len(ids), self.batch):
            part = ids[start:start + self.batch]
            cursor.execute(
                f"UPDATE {table} SET valid_to = %s WHERE valid_to IS NULL "
                f"AND product_id IN ({', '.join(['%s'] * len(part))})",
                [self.now_db, *part],
            )

    def _stamp_unchanged(self, cursor, stamps):
        """Mark unchanged products as seen by this import at their row (duplicate detection)."""
        if not stamps:
            return
        if self.vendor == "postgresql":
            cursor.execute(
                "UPDATE imports_product AS p SET seen_in_import = %s, seen_at_row = v.row_number "
                "FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, row_number) WHERE p.id = v.id",
                [self.import_id, [s[0] for s in stamps], [s[1] for s in stamps]],
            )
            return
        cursor.executemany(
            "UPDATE imports_product SET seen_in_import = %s, seen_at_row = %s WHERE id = %s",
            [(self.import_id, row, pk) for pk, row in stamps],
        )

    # -- the chunk -----------------------------------------------------------------------------------
    def write(self, rows) -> ChunkResult:
        """rows: [(row_number, clean dict)] already validated. Call inside a transaction."""
        result = ChunkResult()
        first_row = {}
        kept = []
        for number, clean in rows:
            code = clean["code"]
            if code in first_row:
                result.problems.append((number, "code", code,
                                        f"Duplicate code '{code}': row {first_row[code]} already has it; "
                                        "only the first row with a code is imported"))
                continue
            first_row[code] = number
            kept.append((number, clean))
        if not kept:
            return result

        with connection.cursor() as cursor:
            existing = {
                code: (pk, digest, price, stock, seen_in, seen_row)
                for pk, code, digest, price, stock, seen_in, seen_row in self._select_in(
                    cursor,
                    "SELECT id, code, row_hash, price, stock, seen_in_import, seen_at_row "
                    "FROM imports_product WHERE {where}",
                    "code", first_row.keys(),
                )
            }
            new, changed, unchanged = [], [], []
            for number, clean in kept:
                digest = row_digest(clean)
                found = existing.get(clean["code"])
                if found is None:
                    new.append((number, clean, digest))
                    continue
                pk, old_digest, old_price, old_stock, seen_in, seen_row = found
                if seen_in == self.import_id and seen_row is not None and seen_row < number:
                    result.problems.append((number, "code", clean["code"],
                                            f"Duplicate code '{clean['code']}': row {seen_row} already has "
                                            "it; only the first row with a code is imported"))
                elif old_digest == digest:
                    unchanged.append((pk, number))
                else:
                    changed.append((pk, number, clean, digest, _decimal(old_price), old_stock))

            now = self.now_db
            self._insert(cursor, "imports_product", PRODUCT_COLUMNS, [
                (c["code"], c["name"], c["brand"], c["category"], c["description"], c["barcode"], c["price"],
                 c["stock"], digest, self.import_id, number, now, now)
                for number, c, digest in new
            ])
            if changed:
                cursor.executemany(
                    "UPDATE imports_product SET name = %s, brand = %s, category = %s, description = %s, "
                    "barcode = %s, price = %s, stock = %s, row_hash = %s, seen_in_import = %s, "
                    "seen_at_row = %s, updated_at = %s WHERE id = %s",
                    [(c["name"], c["brand"], c["category"], c["description"], c["barcode"], c["price"],
                      c["stock"], digest, self.import_id, number, now, pk)
                     for pk, number, c, digest, _, _ in changed],
                )
            self._stamp_unchanged(cursor, unchanged)

            new_ids = dict(
                (code, pk) for pk, code in self._select_in(
                    cursor, "SELECT id, code FROM imports_product WHERE {where}", "code",
                    [c["code"] for _, c, _ in new],
                )
            ) if new else {}

            price_rows, stock_rows = [], []
            price_closed, stock_closed = [], []
            for _, clean, _ in new:
                pk = new_ids[clean["code"]]
                price_rows.append((pk, clean["price"], now, self.import_id))
                stock_rows.append((pk, clean["stock"], now, self.import_id))
            for pk, _, clean, _, old_price, old_stock in changed:
                if clean["price"] != old_price:
                    price_closed.append(pk)
                    price_rows.append((pk, clean["price"], now, self.import_id))
                if clean["stock"] != old_stock:
                    stock_closed.append(pk)
                    stock_rows.append((pk, clean["stock"], now, self.import_id))
            self._close_open(cursor, "imports_pricerecord", price_closed)
            self._close_open(cursor, "imports_stockrecord", stock_closed)
            self._insert(cursor, "imports_pricerecord", ("product_id", "price", "valid_from", "import_log_id"),
                         price_rows)
            self._insert(cursor, "imports_stockrecord", ("product_id", "quantity", "valid_from", "import_log_id"),
                         stock_rows)

            if self.vendor == "sqlite":
                from .search import sqlite_index_rows

                sqlite_index_rows(
                    cursor,
                    [(new_ids[c["code"]], c["code"], c["name"], c["brand"]) for _, c, _ in new],
                    [(pk, c["code"], c["name"], c["brand"]) for pk, _, c, _, _, _ in changed],
                )

        result.created = len(new)
        result.updated = len(changed)
        result.unchanged = len(unchanged)
        return result
