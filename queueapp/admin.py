from django.contrib import admin, messages
from django.utils.html import format_html

from . import services
from .models import EngineLock, Job, JobEvent, KindGate


class JobEventInline(admin.TabularInline):
    model = JobEvent
    fields = ["created_at", "type", "message"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["created_at", "id"]
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False


class KindFilter(admin.SimpleListFilter):
    title = "kind"
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        kinds = Job.objects.values_list("kind", flat=True).distinct().order_by("kind")
        return [(kind, kind) for kind in kinds]

    def queryset(self, request, queryset):
        return queryset.filter(kind=self.value()) if self.value() else queryset


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["short_id", "kind", "owner", "status", "progress", "attempts_used", "message",
                    "created_at", "finished_at"]
    list_filter = [KindFilter, "status", "owner"]
    search_fields = ["id", "kind", "message", "error", "owner__username"]
    date_hierarchy = "created_at"
    inlines = [JobEventInline]
    actions = ["cancel_jobs", "retry_jobs"]
    list_select_related = ["owner"]
    readonly_fields = [
        "id", "kind", "owner", "status", "priority", "params", "checkpoint", "progress_done",
        "progress_total", "succeeded_count", "failed_count", "message", "result", "error", "attempts",
        "max_attempts", "run_after", "lease_expires_at", "dispatched_at", "cancel_requested", "parent",
        "created_at", "started_at", "updated_at", "finished_at",
    ]

    def has_add_permission(self, request):
        return False

    @admin.display(description="id")
    def short_id(self, job):
        return str(job.id)[:8]

    @admin.display(description="attempts")
    def attempts_used(self, job):
        return f"{job.attempts}/{job.max_attempts}"

    @admin.display(description="progress")
    def progress(self, job):
        total = job.progress_total
        label = f"{job.progress_done}/{total}" if total else str(job.progress_done or "")
        return format_html(
            '<progress value="{}" max="100" title="{}%"></progress> {}', job.percentage, job.percentage, label
        )

    @admin.action(description="Cancel selected jobs")
    def cancel_jobs(self, request, queryset):
        self._apply(request, queryset, services.cancel, "cancelled or asked to stop")

    @admin.action(description="Retry selected failed or cancelled jobs")
    def retry_jobs(self, request, queryset):
        self._apply(request, queryset, services.retry, "queued again")

    def _apply(self, request, queryset, operation, done_text):
        done, refused = 0, []
        for job in queryset:
            try:
                operation(job)
                done += 1
            except services.JobError as exc:
                refused.append(f"{str(job.id)[:8]}: {exc}")
        if done:
            self.message_user(request, f"{done} job(s) {done_text}.", messages.SUCCESS)
        for line in refused:
            self.message_user(request, line, messages.WARNING)


@admin.register(KindGate)
class KindGateAdmin(admin.ModelAdmin):
    list_display = ["kind"]
    readonly_fields = ["kind", "recent_starts"]


@admin.register(EngineLock)
class EngineLockAdmin(admin.ModelAdmin):
    list_display = ["name", "held_until"]
