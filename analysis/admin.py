from django.contrib import admin
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from .models import SalesAnalysis


@admin.register(SalesAnalysis)
class SalesAnalysisAdmin(admin.ModelAdmin):
    list_display = ["job_link", "asin", "marketplace", "job_status", "owner", "rows_used", "rows_rejected",
                    "created_at", "report_link"]
    list_filter = ["marketplace", "job__status"]
    search_fields = ["asin", "job__id", "revenue_filename", "design_filename", "job__owner__username"]
    list_select_related = ["job", "job__owner"]
    readonly_fields = [f.name for f in SalesAnalysis._meta.fields] + ["job_link", "job_status", "report_link"]

    def has_add_permission(self, request):
        return False  # analyses start from the API or analyze_sales, which check the files

    @admin.display(description="job")
    def job_link(self, obj):
        try:
            url = reverse("admin:queueapp_job_change", args=[obj.job_id])
        except NoReverseMatch:
            return str(obj.job_id)
        return format_html('<a href="{}">{}</a>', url, obj.job_id)

    @admin.display(description="status", ordering="job__status")
    def job_status(self, obj):
        return obj.job.status

    @admin.display(description="owner", ordering="job__owner__username")
    def owner(self, obj):
        return obj.job.owner.username if obj.job.owner else "-"

    @admin.display(description="report")
    def report_link(self, obj):
        if obj.job.status != "succeeded":
            return "-"
        return format_html('<a href="{}">report.xlsx</a>', reverse("analysis-report", args=[obj.job_id]))
