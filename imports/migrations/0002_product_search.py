"""Full-text search over products: an FTS5 table on SQLite, a GIN expression index on PostgreSQL.

The seed synced products to TypeSense after each import; the database's own full-text search keeps the
index current in the import's own transactions, with nothing else to run. imports/search.py queries it."""

from django.db import migrations

SQLITE_FORWARD = [
    # A table with its own copy of the three searched columns (rowid = product id), kept current by the
    # import per chunk and by signals for single edits, not by triggers: per-row triggers would index
    # inside every INSERT of a 700k-row import.
    "CREATE VIRTUAL TABLE imports_product_fts USING fts5(code, name, brand, tokenize = 'unicode61')",
    "INSERT INTO imports_product_fts(rowid, code, name, brand) SELECT id, code, name, brand FROM imports_product",
]
SQLITE_BACKWARD = ["DROP TABLE IF EXISTS imports_product_fts"]
POSTGRES_FORWARD = [
    "CREATE INDEX imports_product_search ON imports_product USING gin "
    "(to_tsvector('simple'::regconfig, code || ' ' || name || ' ' || brand))",
]
POSTGRES_BACKWARD = ["DROP INDEX IF EXISTS imports_product_search"]


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    statements = {"sqlite": SQLITE_FORWARD, "postgresql": POSTGRES_FORWARD}.get(vendor, [])
    for statement in statements:
        schema_editor.execute(statement)


def backward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    statements = {"sqlite": SQLITE_BACKWARD, "postgresql": POSTGRES_BACKWARD}.get(vendor, [])
    for statement in statements:
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("imports", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
