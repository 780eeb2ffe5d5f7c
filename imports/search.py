"""Product search by code, name and brand: SQLite FTS5 or PostgreSQL full text, picked by the connection.

Both match every word of the query as a prefix ("bosc dri" finds "Bosch drill"), so a partly typed code
or name finds the product.

The index is kept apart from the products (the FTS5 table imports_product_fts, or imports_product_search
with its GIN index on PostgreSQL, migrations 0002 and 0005) and brought up to date after an import, by the
job `imports.search_refresh` (`refresh_range`), like the seed's sync to TypeSense after each import: keeping
it current inside the import's own chunks cost ~30% of a 700k-row first import on SQLite (40 s with,
29 s without) and ~45% on PostgreSQL (57 s, 32 s). Single edits (admin, shell) are indexed at once by the signals below."""

import re

from django.db import connection
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .models import Product

WORD_RE = re.compile(r"\w+", re.UNICODE)
MAX_TERMS = 8
DOCUMENT = "to_tsvector('simple'::regconfig, code || ' ' || name || ' ' || brand)"


def terms_of(query):
    return WORD_RE.findall(query or "")[:MAX_TERMS]


def search_products(query, queryset=None):
    """Products matching every word of `query` as a prefix; an exact code match comes first."""
    queryset = Product.objects.all() if queryset is None else queryset
    terms = terms_of(query)
    if not terms:
        return queryset.none()
    if connection.vendor == "postgresql":
        tsquery = " & ".join(f"{term.lower()}:*" for term in terms)
        matched = queryset.extra(
            where=["imports_product.id IN (SELECT product_id FROM imports_product_search "
                   "WHERE document @@ to_tsquery('simple'::regconfig, %s)) OR imports_product.code = %s"],
            params=[tsquery, query.strip()],
        )
    elif connection.vendor == "sqlite":
        # Every term quoted (FTS5 syntax characters in the query are then plain text) and a prefix.
        match = " ".join('"' + term.replace('"', '""') + '"*' for term in terms)
        matched = queryset.extra(
            where=["imports_product.id IN (SELECT rowid FROM imports_product_fts "
                   "WHERE imports_product_fts MATCH %s) OR imports_product.code = %s"],
            params=[match, query.strip()],
        )
    else:  # pragma: no cover - other databases: a plain, unindexed search
        from django.db.models import Q

        condition = Q()
        for term in terms:
            condition &= Q(code__icontains=term) | Q(name__icontains=term) | Q(brand__icontains=term)
        matched = queryset.filter(condition)
    return matched.extra(select={"exact_code": "CASE WHEN imports_product.code = %s THEN 0 ELSE 1 END"},
                         select_params=[query.strip()]).order_by("exact_code", "code")


def batch_ends(since, after_id, limit, count):
    """The last product id of each of the next `count` batches of `limit` products (by id, after
    `after_id`) changed at or after `since`: fewer when fewer are left, none when none are."""
    ends = []
    with connection.cursor() as cursor:
        since_db = connection.ops.adapt_datetimefield_value(since)
        for _ in range(count):
            cursor.execute("SELECT max(id) FROM (SELECT id FROM imports_product WHERE id > %s AND updated_at >= %s "
                           "ORDER BY id LIMIT %s) batch", [after_id, since_db, limit])
            after_id = cursor.fetchone()[0]
            if after_id is None:
                break
            ends.append(after_id)
    return ends


def refresh_range(since, after_id, last_id):
    """Index the products with `after_id` < id <= `last_id` changed at or after `since`. Returns how many.
    Call in a transaction."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The WHERE on the upsert: a refresh that read a product before a newer edit was indexed (by a
            # signal below, or another refresh) leaves the newer document alone.
            cursor.execute(
                "WITH batch AS (SELECT id, code, name, brand, updated_at FROM imports_product "
                " WHERE id > %s AND id <= %s AND updated_at >= %s),"
                f" indexed AS (INSERT INTO imports_product_search (product_id, source_updated_at, document)"
                f"  SELECT id, updated_at, {DOCUMENT} FROM batch"
                "  ON CONFLICT (product_id) DO UPDATE SET document = EXCLUDED.document, "
                "  source_updated_at = EXCLUDED.source_updated_at "
                "  WHERE imports_product_search.source_updated_at <= EXCLUDED.source_updated_at)"
                " SELECT count(*) FROM batch",
                [after_id, last_id, since],
            )
            return cursor.fetchone()[0]
        if connection.vendor != "sqlite":  # pragma: no cover - other databases search without an index
            return 0
        since_db = connection.ops.adapt_datetimefield_value(since)
        cursor.execute("SELECT id, code, name, brand FROM imports_product WHERE id > %s AND id <= %s "
                       "AND updated_at >= %s", [after_id, last_id, since_db])
        rows = cursor.fetchall()
        sqlite_index_rows(cursor, rows)
        return len(rows)


def count_to_refresh(since):
    return Product.objects.filter(updated_at__gte=since).count()


def sqlite_index_rows(cursor, rows):
    """(Re-)index products: rows are (id, code, name, brand)."""
    if rows:
        cursor.executemany("DELETE FROM imports_product_fts WHERE rowid = %s", [(r[0],) for r in rows])
        cursor.executemany("INSERT INTO imports_product_fts (rowid, code, name, brand) VALUES (%s, %s, %s, %s)",
                           rows)


@receiver(post_save, sender=Product, dispatch_uid="imports_product_search_save")
def _index_saved_product(sender, instance, raw=False, **kwargs):
    if raw:
        return
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            sqlite_index_rows(cursor, [(instance.pk, instance.code, instance.name, instance.brand)])
        elif connection.vendor == "postgresql":
            cursor.execute(
                f"INSERT INTO imports_product_search (product_id, source_updated_at, document) "
                f"SELECT id, updated_at, {DOCUMENT} FROM imports_product WHERE id = %s "
                "ON CONFLICT (product_id) DO UPDATE SET document = EXCLUDED.document, "
                "source_updated_at = EXCLUDED.source_updated_at",
                [instance.pk],
            )


@receiver(post_delete, sender=Product, dispatch_uid="imports_product_search_delete")
def _unindex_deleted_product(sender, instance, **kwargs):
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("DELETE FROM imports_product_fts WHERE rowid = %s", [instance.pk])
        elif connection.vendor == "postgresql":
            cursor.execute("DELETE FROM imports_product_search WHERE product_id = %s", [instance.pk])
