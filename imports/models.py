from django.conf import settings
from django.db import models
from django.db.models import Q

from queueapp.engine import Job


class ImportLog(models.Model):
    """One upload and what became of it. Products run as a background job; dealers synchronously."""

    class Type(models.TextChoices):
        PRODUCTS = "PRODUCTS", "Products"
        DEALERS = "DEALERS", "Dealers"

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"
        PROCESSING = "PROCESSING", "Processing"
        COMPLETED = "COMPLETED", "Completed"
        FAILED = "FAILED", "Failed"

    type = models.CharField(max_length=16, choices=Type.choices)
    file = models.FileField(upload_to="imports/%Y/%m/", blank=True, max_length=255)
    file_name = models.CharField(max_length=255, help_text="The name the file was uploaded with.")
    file_format = models.CharField(max_length=8, help_text="xlsx or csv")
    file_size = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="import_logs")
    # The ImportLog outlives its job: queueapp deletes finished jobs after JOBS_RETENTION_DAYS.
    job = models.OneToOneField(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="import_log")
    import_status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    total_rows = models.BigIntegerField(null=True, blank=True,
                                        help_text="Data rows in the file (an estimate until the import ends).")
    processed_rows = models.BigIntegerField(default=0)
    created_count = models.BigIntegerField(default=0)
    updated_count = models.BigIntegerField(default=0)
    unchanged_count = models.BigIntegerField(default=0)
    error_count = models.BigIntegerField(default=0, help_text="Rows rejected.")
    warnings = models.JSONField(default=list, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    # The product search is brought up to date by a job of its own once the import ends (imports.search).
    search_indexed_at = models.DateTimeField(
        null=True, blank=True,
        help_text="When the product search caught up with this import; empty until then.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["uploaded_by", "-created_at"], name="importlog_user_created"),
            models.Index(fields=["type", "import_status"], name="importlog_type_status"),
        ]

    def __str__(self):
        return f"{self.get_type_display()} import {self.pk} ({self.file_name}, {self.import_status})"

    @property
    def success_count(self):
        return self.created_count + self.updated_count + self.unchanged_count


class ImportRowError(models.Model):
    import_log = models.ForeignKey(ImportLog, on_delete=models.CASCADE, related_name="row_errors")
    row_number = models.BigIntegerField(help_text="Row in the spreadsheet (the header is row 1).")
    column = models.CharField(max_length=100, blank=True)
    value = models.TextField(blank=True)
    message = models.TextField()

    class Meta:
        ordering = ["import_log", "row_number", "id"]
        indexes = [models.Index(fields=["import_log", "row_number"], name="importrowerror_log_row")]

    def __str__(self):
        return f"row {self.row_number} {self.column}: {self.message}"


class Product(models.Model):
    # Unique by a constraint rather than unique=True: on PostgreSQL, unique=True also builds a
    # varchar_pattern_ops index for LIKE 'x%' that nothing here queries (search has its own index),
    # and every import row would pay for it (~0.75 s per 100k new products, measured).
    code = models.CharField(max_length=64)
    name = models.CharField(max_length=255)
    brand = models.CharField(max_length=120, blank=True)
    category = models.CharField(max_length=120, blank=True)
    description = models.TextField(blank=True)
    barcode = models.CharField(max_length=14, blank=True)
    # The current price and stock, for fast reads; PriceRecord and StockRecord keep the history.
    price = models.DecimalField(max_digits=12, decimal_places=2)
    stock = models.BigIntegerField()
    # A 64-bit digest of the imported fields: an unchanged row is recognised without comparing columns.
    row_hash = models.BigIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(fields=["code"], name="product_code_unique"),
            models.CheckConstraint(condition=Q(price__gte=0), name="product_price_not_negative"),
            models.CheckConstraint(condition=Q(stock__gte=0), name="product_stock_not_negative"),
        ]

    def __str__(self):
        return f"{self.code} {self.name}"


class ImportOrderIndex(models.Index):
    """An index on the import that wrote a history row. History rows are appended import after import, so
    on PostgreSQL this is a BRIN index: a summary per range of table pages, nothing per row, where a
    B-tree took an entry for each of the 1.4M rows of a 700k-row first import (~1.2 s of server CPU,
    measured). "The rows import X wrote" (deleting an import nulls them) then reads the page ranges
    that can hold X. Elsewhere (SQLite) a plain B-tree."""

    def create_sql(self, model, schema_editor, using="", **kwargs):
        if schema_editor.connection.vendor != "postgresql":
            return super().create_sql(model, schema_editor, using=using, **kwargs)
        statement = super().create_sql(model, schema_editor, using=" USING brin", **kwargs)
        # Summarise each range of pages as it fills, not only at the next VACUUM.
        statement.parts["extra"] = " WITH (autosummarize = on)" + statement.parts["extra"]
        return statement


class PriceRecord(models.Model):
    """A price over a period; the open record (valid_to empty) is the current price."""

    # No database constraints on the history's foreign keys (Django still cascades and nulls on delete):
    # checking 200k history rows per 100k new products cost ~3 s at commit on PostgreSQL, and the import,
    # the only bulk writer, writes history only for products it inserted or row-locked by its UPDATE in the
    # same transaction (imports/writer.py), so no record can point at a missing product.
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="price_history",
                                db_constraint=False)
    price = models.DecimalField(max_digits=12, decimal_places=2)
    valid_from = models.DateTimeField()
    valid_to = models.DateTimeField(null=True, blank=True)
    import_log = models.ForeignKey(ImportLog, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="price_records", db_constraint=False, db_index=False)

    class Meta:
        ordering = ["product", "-valid_from", "-id"]
        indexes = [ImportOrderIndex(fields=["import_log"], name="pricerecord_import_log")]
        constraints = [
            models.UniqueConstraint(fields=["product"], condition=Q(valid_to__isnull=True),
                                    name="pricerecord_one_open_per_product"),
            models.CheckConstraint(condition=Q(price__gte=0), name="pricerecord_price_not_negative"),
        ]

    def __str__(self):
        return f"{self.product_id}: {self.price} from {self.valid_from:%Y-%m-%d %H:%M}"


class StockRecord(models.Model):
    """A stock level over a period; the open record (valid_to empty) is the current level."""

    # No database constraints on the foreign keys: see PriceRecord.
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="stock_history",
                                db_constraint=False)
    quantity = models.BigIntegerField()
    valid_from = models.DateTimeField()
    valid_to = models.DateTimeField(null=True, blank=True)
    import_log = models.ForeignKey(ImportLog, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="stock_records", db_constraint=False, db_index=False)

    class Meta:
        ordering = ["product", "-valid_from", "-id"]
        indexes = [ImportOrderIndex(fields=["import_log"], name="stockrecord_import_log")]
        constraints = [
            models.UniqueConstraint(fields=["product"], condition=Q(valid_to__isnull=True),
                                    name="stockrecord_one_open_per_product"),
        ]

    def __str__(self):
        return f"{self.product_id}: {self.quantity} from {self.valid_from:%Y-%m-%d %H:%M}"


class Dealer(models.Model):
    code = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=255)
    contact_name = models.CharField(max_length=255, blank=True)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    address = models.CharField(max_length=255, blank=True)
    city = models.CharField(max_length=120, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    country = models.CharField(max_length=80, blank=True)
    row_hash = models.BigIntegerField(default=0, editable=False)
    last_import = models.ForeignKey(ImportLog, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="dealers")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]

    def __str__(self):
        return f"{self.code} {self.name}"
