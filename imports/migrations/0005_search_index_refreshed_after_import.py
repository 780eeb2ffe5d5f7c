"""The product search index is no longer written by each chunk of an import but by a job that follows it
(imports/search.py). On PostgreSQL its documents move from a GIN expression index on imports_product into
a table of their own, which that job fills; on SQLite the FTS5 table of 0002 stays as it is.

Measured on the 700k-row benchmark, PostgreSQL: the GIN index took ~34 s of the first import's backend
CPU (57 s with it, 32 s without)."""

from django.db import migrations, models

POSTGRES_FORWARD = [
    "DROP INDEX IF EXISTS imports_product_search",  # (its name is the new table's)
    # source_updated_at: the product's updated_at that the document was made from, so that an older
    # refresh never overwrites a newer document (imports/search.py).
    "CREATE TABLE imports_product_search (product_id bigint PRIMARY KEY, "
    "source_updated_at timestamp with time zone NOT NULL, document tsvector NOT NULL)",
    "INSERT INTO imports_product_search (product_id, source_updated_at, document) "
    "SELECT id, updated_at, to_tsvector('simple'::regconfig, code || ' ' || name || ' ' || brand) "
    "FROM imports_product",
    "CREATE INDEX imports_product_search_document ON imports_product_search USING gin (document)",
]
POSTGRES_BACKWARD = [
    "DROP TABLE IF EXISTS imports_product_search",
    "CREATE INDEX imports_product_search ON imports_product USING gin "
    "(to_tsvector('simple'::regconfig, code || ' ' || name || ' ' || brand))",
]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in POSTGRES_FORWARD:
            schema_editor.execute(statement)
    # Imports that ended before this migration were indexed as they ran.
    ImportLog = apps.get_model("imports", "ImportLog")
    ImportLog.objects.filter(search_indexed_at__isnull=True, completed_at__isnull=False).update(
        search_indexed_at=models.F("completed_at"))


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in POSTGRES_BACKWARD:
            schema_editor.execute(statement)


class Migration(migrations.Migration):

    dependencies = [
        ("imports", "0004_history_fk_without_db_constraints_code_unique_constraint"),
    ]

    operations = [
        migrations.AddField(
            model_name="importlog",
            name="search_indexed_at",
            field=models.DateTimeField(blank=True, help_text="When the product search caught up with this import; empty until then.", null=True),
        ),
        migrations.RunPython(forward, backward),
    ]
