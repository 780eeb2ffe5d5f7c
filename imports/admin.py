from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from . import services
from .models import Dealer, ImportLog, ImportRowError, PriceRecord, Product, StockRecord

INLINE_ERRORS = 100


class ImportRowErrorInline(admin.TabularInline):
    model = ImportRowError
    fields = ["row_number", "column", "value", "message"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = f"Row errors (the first {INLINE_ERRORS}; all of them in errors.csv)"

    def has_add_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        # An import can reject 700k rows: the page shows the first ones; errors.csv has them all.
        errors = super().get_queryset(request)
        parent_id = request.resolver_match.kwargs.get("object_id") if request.resolver_match else None
        if parent_id is None:
            return errors.none()
        first = list(errors.filter(import_log_id=parent_id).order_by("row_number", "id")
                     .values_list("id", flat=True)[:INLINE_ERRORS])
        return errors.filter(id__in=first)


@admin.register(ImportLog)
class ImportLogAdmin(admin.ModelAdmin):
    list_display = ["id", "type", "file_name", "uploaded_by", "import_status", "progress", "created_count",
                    "updated_count", "unchanged_count", "error_count", "job_link", "created_at"]
    list_filter = ["type", "import_status"]
    search_fields = ["file_name", "sha256", "uploaded_by__username"]
    date_hierarchy = "created_at"
    inlines = [ImportRowErrorInline]
    actions = ["retry_imports"]
    list_select_related = ["uploaded_by", "job"]
    readonly_fields = ["type", "file_name", "file_format", "file_size", "sha256", "file", "uploaded_by",
                       "job_link", "import_status", "total_rows", "processed_rows", "created_count",
                       "updated_count", "unchanged_count", "error_count", "warnings", "started_at",
                       "completed_at", "search_indexed_at", "error", "errors_csv", "created_at", "updated_at"]
    exclude = ["job"]

    def has_add_permission(self, request):
        return False

    def get_object(self, request, object_id, from_field=None):
        import_log = super().get_object(request, object_id, from_field)
        return services.sync_with_job(import_log) if import_log is not None else None

    @admin.display(description="progress")
    def progress(self, import_log):
        total = import_log.total_rows
        if not total:
            return import_log.processed_rows or ""
        percent = 100 if import_log.import_status == ImportLog.Status.COMPLETED else min(
            100, int(import_log.processed_rows * 100 / total))
        return format_html('<progress value="{}" max="100"></progress> {}/{}', percent,
                           import_log.processed_rows, total)

    @admin.display(description="job")
    def job_link(self, import_log):
        if import_log.job_id is None:
            return "-"
        url = reverse("admin:queueapp_job_change", args=[import_log.job_id])
        return format_html('<a href="{}">{}</a>', url, str(import_log.job_id)[:8])

    @admin.display(description="all row errors")
    def errors_csv(self, import_log):
        url = reverse("import-errors", args=[import_log.pk])
        return format_html('<a href="{}">errors.csv</a> ({} rows rejected)', url, import_log.error_count)

    @admin.action(description="Retry selected failed product imports")
    def retry_imports(self, request, queryset):
        done, refused = 0, []
        for import_log in queryset:
            try:
                services.retry_import(import_log)
                done += 1
            except services.ImportNotRetryable as exc:
                refused.append(f"#{import_log.pk}: {exc}")
        if done:
            self.message_user(request, f"{done} import(s) queued again; each resumes after its last "
                                       "committed chunk.", messages.SUCCESS)
        for text in refused:
            self.message_user(request, text, messages.WARNING)


class PriceRecordInline(admin.TabularInline):
    model = PriceRecord
    fields = ["price", "valid_from", "valid_to", "import_log"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["-valid_from", "-id"]

    def has_add_permission(self, request, obj=None):
        return False


class StockRecordInline(PriceRecordInline):
    model = StockRecord
    fields = ["quantity", "valid_from", "valid_to", "import_log"]
    readonly_fields = fields


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "brand", "category", "price", "stock", "updated_at"]
    search_fields = ["code", "name", "brand"]
    list_filter = ["brand"]
    inlines = [PriceRecordInline, StockRecordInline]
    show_full_result_count = False  # COUNT(*) over 700k rows on every page is not worth it


@admin.register(Dealer)
class DealerAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "contact_name", "email", "phone", "city", "country", "updated_at"]
    search_fields = ["code", "name", "email", "city"]
