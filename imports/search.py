"""Product search by code, name and brand: SQLite FTS5 or PostgreSQL full text, picked by the connection.

Both match every word of the query as a prefix ("bosc dri" finds "Bosch drill"), so a partly typed code
or name finds the product. The index is written in the import's own transactions (see writer.py and
migration 0002), so a search right after an import sees all of it."""

import re

from django.db import connection
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .models import Product

WORD_RE = re.compile(r"\w+", re.UNICODE)
MAX_TERMS = 8


def terms_of(query):
    return WORD_RE.findall(query or "")[:MAX_TERMS]


def search_products(query, queryset=None):
    """Products matching every word of `query` as a prefix; an exact code match comes first."""
    queryset = Product.objects.all() if queryset is None else queryset
    terms = terms_of(query)
    if not terms:
        return queryset.none()
    if connection.vendor == "postgresql":
        # The same expression as the GIN index of migration 0002, so the index is used.
        tsquery = " & ".join(f"{term.lower()}:*" for term in terms)
        matched = queryset.extra(
            where=["to_tsvector('simple'::regconfig, code || ' ' || name || ' ' || brand) "
                   "@@ to_tsquery('simple'::regconfig, %s) OR code = %s"],
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


def sqlite_index_rows(cursor, new_rows, changed_rows):
    """Add new products and re-index changed ones: rows are (id, code, name, brand)."""
    if changed_rows:
        cursor.executemany("DELETE FROM imports_product_fts WHERE rowid = %s", [(r[0],) for r in changed_rows])
    rows = list(new_rows) + list(changed_rows)
    if rows:
        cursor.executemany("INSERT INTO imports_product_fts (rowid, code, name, brand) VALUES (%s, %s, %s, %s)",
                           rows)


@receiver(post_save, sender=Product, dispatch_uid="imports_product_fts_save")
def _index_saved_product(sender, instance, raw=False, **kwargs):
    # Imports write in SQL and index in writer.py; this keeps single edits (admin, shell) searchable.
    if connection.vendor == "sqlite" and not raw:
        with connection.cursor() as cursor:
            sqlite_index_rows(cursor, [], [(instance.pk, instance.code, instance.name, instance.brand)])


@receiver(post_delete, sender=Product, dispatch_uid="imports_product_fts_delete")
def _unindex_deleted_product(sender, instance, **kwargs):
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM imports_product_fts WHERE rowid = %s", [instance.pk])
