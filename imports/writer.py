"""Writing one chunk of product rows: products and their price and stock history, in plain SQL.

Why not the ORM: bulk_update runs at ~600 rows/s and bulk_create(update_conflicts) at ~20k rows/s here;
executemany (SQLite) and COPY (PostgreSQL) are several times faster, and a chunk is a handful of
statements. The caller wraps a chunk in one transaction together with its checkpoint.

A row is (row number, values, digest): values a tuple in columns.FLAT_FIELDS order (the price a Decimal
or its text: it becomes a Decimal only for the rows written), digest columns.row_digest of them.

Per chunk: one SELECT finds the existing products by code; each row is then new, changed (its digest
differs), unchanged (same digest: nothing is written, no history) or a duplicate of an earlier row of
the same import. Earlier rows are remembered in memory by product id (`SeenProducts`:
exact, a few MB for 700k products), rebuilt from the file when a job resumes; nothing is written to the
product to remember it, so a re-import of an unchanged file writes no product row at all.

The search index is not written here: imports/search.py refreshes it once the import has ended."""

from array import array
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import IntegrityError, connection


CENT = Decimal("0.01")
SEPARATOR = "\x01"
ANALYZE_AFTER_ROWS = 10_000
PRODUCT_COLUMNS = ("id", "code", "name", "brand", "category", "description", "barcode", "price", "stock",
                   "row_hash", "created_at", "updated_at")


def _decimal(value):
    if value is None:
        return None
    if not isinstance(value, Decimal):
        value = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    return value.quantize(CENT)


class SeenProducts:
    """Which products this import has already read, and at which row: product id -> row number.

    Exact (product ids, no hashing, so nothing can collide) and compact: pages of 4096 unsigned 32-bit
    row numbers, allocated for the id ranges in use (16 KB a page; ~2.8 MB for 700k consecutive ids)."""

    PAGE_BITS = 12
    PAGE = 1 << PAGE_BITS
    MASK = PAGE - 1

    def __init__(self):
        self._pages = {}
        self.count = 0

    def get(self, pk):
        page = self._pages.get(pk >> self.PAGE_BITS)
        return page[pk & self.MASK] if page is not None else 0

    def add(self, pk, row):
        """Remember the first row that read product `pk`; later calls for the same product are ignored."""
        page = self._pages.get(pk >> self.PAGE_BITS)
        if page is None:
            page = self._pages[pk >> self.PAGE_BITS] = array("I", bytes(4 * self.PAGE))
        if not page[pk & self.MASK]:
            page[pk & self.MASK] = row
            self.count += 1

    def __len__(self):
        return self.count

    def nbytes(self):
        return sum(page.itemsize * len(page) for page in self._pages.values())


@dataclass
class ChunkResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: list = field(default_factory=list)  # (row_number, column, value, message)
    seen: list = field(default_factory=list)  # (product id, row number) of every row written or unchanged


def _vanished(count):
    """Products deleted since this chunk's first SELECT: their history must not be written (the history
    tables have no database foreign keys). The caller redoes the chunk row by row, which imports those
    rows as new products."""
    return IntegrityError(f"{count} of the chunk's products were deleted while it was written")


def duplicate_message(code, first_row):
    return (f"Duplicate code '{code}': row {first_row} already has it; only the first row with a code is "
            "imported")


class ProductWriter:
    """Writes chunks for one import. `vendor` picks executemany (SQLite) or COPY (PostgreSQL).

    `seen` holds the products read by earlier chunks of this import. `write` does not change it: the
    caller calls `remember(result.seen)` once the rows are safely written (a chunk or a row that rolls
    back must not count as read)."""

    def __init__(self, import_id, now):
        self.import_id = import_id
        self.vendor = connection.vendor
        self.now = now
        self.now_db = connection.ops.adapt_datetimefield_value(now)
        limit = connection.features.max_query_params or 100_000
        self.batch = max(100, min(limit - 10, 30_000))
        self.seen = SeenProducts()
        self._analyzed_rows = None  # PostgreSQL: products in the table at its last ANALYZE we know of
        self._created_since_analyze = 0
        self._by_range = True  # see _existing

    def committed(self, created):
        """After each chunk's commit. PostgreSQL plans the chunk's SELECT by code from the table's
        statistics: for a table that has grown a lot since they were taken (a first import into an empty
        catalogue) it picks a sequential scan of every product per chunk (measured over 700k new
        products: 6 ms growing to 224 ms a chunk) instead of 10k index lookups (~25 ms). So the import
        refreshes the statistics of the code column each time the table has doubled: ~7 times in a
        700k-row first import, never in a re-import."""
        if self.vendor != "postgresql" or not created:
            return
        with connection.cursor() as cursor:
            if self._analyzed_rows is None:
                cursor.execute("SELECT reltuples FROM pg_class WHERE oid = 'imports_product'::regclass")
                self._analyzed_rows = max(0, int(cursor.fetchone()[0]))
            self._created_since_analyze += created
            if self._created_since_analyze >= max(ANALYZE_AFTER_ROWS, self._analyzed_rows):
                cursor.execute("ANALYZE imports_product (code)")
                self._analyzed_rows += self._created_since_analyze
                self._created_since_analyze = 0

    def remember(self, seen):
        # SeenProducts.add inlined: this runs for every row of an import.
        pages, bits, mask, size = self.seen._pages, SeenProducts.PAGE_BITS, SeenProducts.MASK, SeenProducts.PAGE
        added = 0
        for pk, row in seen:
            page = pages.get(pk >> bits)
            if page is None:
                page = pages[pk >> bits] = array("I", bytes(4 * size))
            if not page[pk & mask]:
                page[pk & mask] = row
                added += 1
        self.seen.count += added

    def recall(self, first_rows):
        """Resuming: `first_rows` maps codes read by the committed chunks to their first row."""
        if not first_rows:
            return
        with connection.cursor() as cursor:
            for pk, code in self._select_in(cursor, "SELECT id, code FROM imports_product WHERE {where}", "code",
                                            first_rows.keys()):
                self.seen.add(pk, first_rows[code])

    # -- helpers -------------------------------------------------------------------------------------
    def _select_in(self, cursor, sql, column, values):
        """Run `sql` (with {where}) for values in batches; yields rows."""
        if not values:
            return
        if self.vendor == "postgresql":
            values = list(values)
            if all(type(value) is str for value in values):
                # One text parameter split by the server: psycopg dumps a 10k-element list ~10x slower.
                # \x01 cannot occur in a value: validation rejects control characters.
                cursor.execute(sql.format(where=f"{column} = ANY(string_to_array(%s, %s))"),
                               [SEPARATOR.join(values), SEPARATOR])
            else:
                cursor.execute(sql.format(where=f"{column} = ANY(%s)"), [values])
            yield from cursor.fetchall()
            return
        values = list(values)
        for start in range(0, len(values), self.batch):
            part = values[start:start + self.batch]
            cursor.execute(sql.format(where=f"{column} IN ({', '.join(['%s'] * len(part))})"), part)
            yield from cursor.fetchall()

    def _existing(self, cursor, codes):
        """{code: (id, row_hash)} of the products among `codes` (a dict or set of a chunk's codes).

        A file sorted by code, as catalogue exports usually are, makes a chunk's codes one narrow stretch
        of the code index, and reading that stretch is several times cheaper than looking each code up
        (PostgreSQL: 9 against 34 ms for 10k codes, measured). So the stretch between the chunk's first
        and last code, in the database's own order, is read first, as far as twice the chunk's size; when
        the chunk's codes lie further apart (an unsorted file) the codes are looked up one by one, for
        this chunk and the rest of the import."""
        if self._by_range:
            limit = 2 * len(codes)
            if self.vendor == "postgresql":
                cursor.execute(
                    "WITH k AS MATERIALIZED (SELECT min(c) AS lo, max(c) AS hi"
                    " FROM unnest(string_to_array(%s, %s)) AS c)"
                    " SELECT p.id, p.code, p.row_hash FROM imports_product p, k"
                    " WHERE p.code BETWEEN k.lo AND k.hi LIMIT %s",
                    [SEPARATOR.join(codes), SEPARATOR, limit + 1])
            else:  # SQLite compares text as its UTF-8 bytes: the order of Python's min() and max()
                cursor.execute("SELECT id, code, row_hash FROM imports_product WHERE code BETWEEN %s AND %s "
                               "LIMIT %s", [min(codes), max(codes), limit + 1])
            rows = cursor.fetchall()
            if len(rows) <= limit:
                return {code: (pk, digest) for pk, code, digest in rows if code in codes}
            self._by_range = False
        return {code: (pk, digest) for pk, code, digest in self._select_in(
            cursor, "SELECT id, code, row_hash FROM imports_product WHERE {where}", "code", codes)}

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

    def _new_ids(self, cursor, count):
        """SQLite: ids for `count` new products, taken before inserting them (no SELECT of them after)."""
        if not count:
            return []
        # SQLite: the chunk's transaction holds the write lock, so nobody else takes ids meanwhile. Past the
        # AUTOINCREMENT high-water mark too, so ids of deleted products are never reused.
        cursor.execute("SELECT MAX(COALESCE((SELECT MAX(id) FROM imports_product), 0), "
                       "COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'imports_product'), 0))")
        first = cursor.fetchone()[0] + 1
        return list(range(first, first + count))

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

    def _insert_new_postgres(self, cursor, new):
        """New products and their first price and stock records in one statement, fed by a COPY into a
        temporary table: the history rows never travel from Python, and the ids come back with the codes."""
        # A temporary table: no WAL, no index, private to this connection (and gone with it).
        cursor.execute("CREATE TEMPORARY TABLE IF NOT EXISTS imports_product_staging "
                       "(ord integer, code text, name text, brand text, category text, description text, "
                       "barcode text, price numeric(12, 2), stock bigint, row_hash bigint)")
        cursor.execute("TRUNCATE imports_product_staging")
        now = self.now_db
        with connection.wrap_database_errors:
            with cursor.cursor.copy("COPY imports_product_staging FROM STDIN") as copy:
                for ord_, (number, (code, name, brand, category, description, price, stock, barcode),
                           digest) in enumerate(new):
                    copy.write_row((ord_, code, name, brand, category, description, barcode, price, stock, digest))
        cursor.execute(
            "WITH new AS ("
            " INSERT INTO imports_product (code, name, brand, category, description, barcode, price, stock, "
            "  row_hash, created_at, updated_at)"
            " SELECT code, name, brand, category, description, barcode, price, stock, row_hash, %s, %s"
            " FROM imports_product_staging ORDER BY ord RETURNING id, code, price, stock),"
            " prices AS (INSERT INTO imports_pricerecord (product_id, price, valid_from, import_log_id)"
            "  SELECT id, price, %s, %s FROM new),"
            " stocks AS (INSERT INTO imports_stockrecord (product_id, quantity, valid_from, import_log_id)"
            "  SELECT id, stock, %s, %s FROM new)"
            " SELECT code, id FROM new",
            [now, now, now, self.import_id, now, self.import_id])
        by_code = dict(cursor.fetchall())
        return [by_code[values[0]] for _, values, _ in new]

    # -- the chunk -----------------------------------------------------------------------------------
    def write(self, rows) -> ChunkResult:
        """rows: [(row_number, values, digest)] already validated, in file order. Call inside a
        transaction."""
        result = ChunkResult()
        first_row = {}
        kept = []
        for item in rows:
            code = item[1][0]
            if code in first_row:
                result.problems.append((item[0], "code", code, duplicate_message(code, first_row[code])))
                continue
            first_row[code] = item[0]
            kept.append(item)
        if not kept:
            return result

        # SeenProducts.get inlined: this runs for every row of an import.
        pages, bits, mask = self.seen._pages, SeenProducts.PAGE_BITS, SeenProducts.MASK
        with connection.cursor() as cursor:
            existing = self._existing(cursor, first_row)
            new, changed, seen = [], [], []
            for item in kept:
                number, values, digest = item
                found = existing.get(values[0])
                if found is None:
                    new.append(item)
                    continue
                pk, old_digest = found
                page = pages.get(pk >> bits)
                earlier = page[pk & mask] if page is not None else 0
                if earlier and earlier < number:
                    result.problems.append((number, "code", values[0], duplicate_message(values[0], earlier)))
                    continue
                seen.append((pk, number))
                if old_digest != digest:
                    changed.append((pk, number, values, digest))
            if changed:
                # The old price and stock decide the history records; only changed rows need them.
                old = {pk: (_decimal(price), stock) for pk, price, stock in self._select_in(
                    cursor, "SELECT id, price, stock FROM imports_product WHERE {where}", "id",
                    [row[0] for row in changed])}
                if len(old) != len(changed):
                    raise _vanished(len(changed) - len(old))
                changed = [(pk, number, values, digest, *old[pk]) for pk, number, values, digest in changed]

            now = self.now_db
            import_id = self.import_id
            price_rows, stock_rows = [], []
            if self.vendor == "postgresql" and new:
                # The server writes their first price and stock records in the same statement.
                new_ids = self._insert_new_postgres(cursor, new)
            else:
                new_ids = self._new_ids(cursor, len(new))
                self._insert(cursor, "imports_product", PRODUCT_COLUMNS, [
                    (pk, code, name, brand, category, description, barcode, Decimal(price), stock, digest, now, now)
                    for pk, (number, (code, name, brand, category, description, price, stock, barcode), digest)
                    in zip(new_ids, new)
                ])
                if new:
                    # Their first price and stock records, copied by SQLite from the products just inserted
                    # (their ids are consecutive) instead of bound row by row from Python.
                    for table, column, source in (("imports_pricerecord", "price", "price"),
                                                  ("imports_stockrecord", "quantity", "stock")):
                        cursor.execute(
                            f"INSERT INTO {table} (product_id, {column}, valid_from, import_log_id) "
                            f"SELECT id, {source}, %s, %s FROM imports_product WHERE id BETWEEN %s AND %s "
                            "ORDER BY id", [now, import_id, new_ids[0], new_ids[-1]])
            seen.extend((pk, number) for pk, (number, _, _) in zip(new_ids, new))
            if changed:
                cursor.executemany(
                    "UPDATE imports_product SET name = %s, brand = %s, category = %s, description = %s, "
                    "barcode = %s, price = %s, stock = %s, row_hash = %s, updated_at = %s WHERE id = %s",
                    [(name, brand, category, description, barcode, Decimal(price), stock, digest, now, pk)
                     for pk, number, (code, name, brand, category, description, price, stock, barcode), digest, _, _
                     in changed],
                )
                if cursor.rowcount != len(changed):
                    raise _vanished(len(changed) - cursor.rowcount)

            price_closed, stock_closed = [], []
            for pk, _, values, _, old_price, old_stock in changed:
                price, stock = Decimal(values[5]), values[6]
                if price != old_price:
                    price_closed.append(pk)
                    price_rows.append((pk, price, now, import_id))
                if stock != old_stock:
                    stock_closed.append(pk)
                    stock_rows.append((pk, stock, now, import_id))
            self._close_open(cursor, "imports_pricerecord", price_closed)
            self._close_open(cursor, "imports_stockrecord", stock_closed)
            self._insert(cursor, "imports_pricerecord", ("product_id", "price", "valid_from", "import_log_id"),
                         price_rows)
            self._insert(cursor, "imports_stockrecord", ("product_id", "quantity", "valid_from", "import_log_id"),
                         stock_rows)

        result.created = len(new)
        result.updated = len(changed)
        result.unchanged = len(seen) - len(new) - len(changed)
        result.seen = seen
        return result
