from django.contrib import admin, messages

from . import services
from .models import CategoryAspects, CategoryFetch, CategoryFetchItem, EbayAccount, Promotion


class CategoryFetchItemInline(admin.TabularInline):
    model = CategoryFetchItem
    fields = ["position", "category_id", "category_name", "status", "attempts", "error", "updated_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False
    ordering = ["position"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(CategoryFetch)
class CategoryFetchAdmin(admin.ModelAdmin):
    list_display = ["job_id", "owner", "marketplace_id", "parent_category", "status", "total_categories",
                    "processed", "success", "failed", "skipped", "created_at"]
    list_filter = ["marketplace_id", "job__status"]
    search_fields = ["job__id", "parent_category_id", "parent_category_name", "owner__username"]
    list_select_related = ["job", "owner"]
    readonly_fields = [f.name for f in CategoryFetch._meta.fields]
    inlines = [CategoryFetchItemInline]
    actions = ["retry_failed"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="status")
    def status(self, fetch):
        return services.seed_status(fetch.job)

    @admin.action(description="Re-queue the failed categories (as a new fetch job)")
    def retry_failed(self, request, queryset):
        for fetch in queryset:
            try:
                retry = services.retry_failed_categories(fetch, request.user)
            except services.ServiceError as exc:
                self.message_user(request, f"{fetch.job_id}: {exc.message}", messages.WARNING)
            else:
                self.message_user(request, f"{fetch.job_id}: {retry.total_categories} failed categories "
                                           f"re-queued as job {retry.job_id}.", messages.SUCCESS)


@admin.register(CategoryFetchItem)
class CategoryFetchItemAdmin(admin.ModelAdmin):
    list_display = ["category_id", "category_name", "status", "attempts", "error", "fetch", "updated_at"]
    list_filter = ["status"]
    search_fields = ["category_id", "category_name", "error"]
    readonly_fields = [f.name for f in CategoryFetchItem._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(CategoryAspects)
class CategoryAspectsAdmin(admin.ModelAdmin):
    list_display = ["category_id", "category_name", "marketplace_id", "category_tree_id", "category_tree_version",
                    "aspect_count", "fetched_at"]
    list_filter = ["marketplace_id", "category_tree_id"]
    search_fields = ["category_id", "category_name"]
    readonly_fields = [f.name for f in CategoryAspects._meta.fields]

    @admin.display(description="aspects")
    def aspect_count(self, stored):
        return len(stored.aspects or [])


@admin.register(Promotion)
class PromotionAdmin(admin.ModelAdmin):
    list_display = ["listing_id", "owner", "campaign_id", "ad_rate", "status", "attempts", "ad_id",
                    "already_existed", "last_error", "created_at", "promoted_at"]
    list_filter = ["status", "source", "already_existed"]
    search_fields = ["listing_id", "campaign_id", "ad_id", "owner__username", "last_error"]
    list_select_related = ["owner"]
    readonly_fields = [f.name for f in Promotion._meta.fields]
    actions = ["retry"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Retry the selected failed or cancelled promotions")
    def retry(self, request, queryset):
        for promotion in queryset:
            try:
                queued = services.requeue_promotion(promotion, source="admin")
            except services.ServiceError as exc:
                self.message_user(request, f"Listing {promotion.listing_id}: {exc.message}", messages.WARNING)
            else:
                self.message_user(request, f"Listing {promotion.listing_id}: queued again as job "
                                           f"{queued.promotion.job_id}.", messages.SUCCESS)


@admin.register(EbayAccount)
class EbayAccountAdmin(admin.ModelAdmin):
    list_display = ["user", "environment", "marketplace_id", "default_campaign_id", "access_token_expires_at",
                    "updated_at"]
    # The encrypted tokens are never shown.
    fields = ["user", "environment", "marketplace_id", "default_campaign_id", "access_token_expires_at",
              "created_at", "updated_at"]
    readonly_fields = ["user", "environment", "access_token_expires_at", "created_at", "updated_at"]

    def has_add_permission(self, request):
        return False
