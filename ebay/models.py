from django.conf import settings
from django.db import models
from django.db.models import Q

from queueapp.engine import Job


class EbayAccount(models.Model):
    """A user's connection to eBay. Tokens are stored encrypted (ebay.crypto); never read these fields
    directly, use services.AccountTokens."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ebay_account")
    environment = models.CharField(max_length=16, help_text="production, sandbox or fake")
    refresh_token_encrypted = models.TextField()
    access_token_encrypted = models.TextField(blank=True)
    access_token_expires_at = models.DateTimeField(null=True, blank=True)
    default_campaign_id = models.CharField(max_length=40, blank=True,
                                           help_text="Used when a promotion names no campaign.")
    marketplace_id = models.CharField(max_length=40, default="EBAY_US")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"eBay account of {self.user} ({self.environment})"


class CategoryFetch(models.Model):
    """A category-fetch job (seed 000): which tree and subtree, and its counters. The counters change in
    the same transaction as the category they count, so they survive a crash exactly."""

    job = models.OneToOneField(Job, primary_key=True, on_delete=models.CASCADE, related_name="category_fetch")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                              related_name="category_fetches")
    marketplace_id = models.CharField(max_length=40)
    category_tree_id = models.CharField(max_length=20)
    category_tree_version = models.CharField(max_length=20, blank=True)
    parent_category_id = models.CharField(max_length=20, blank=True)
    parent_category_name = models.CharField(max_length=200, blank=True)
    max_categories = models.PositiveIntegerField(null=True, blank=True)
    force = models.BooleanField(default=False, help_text="Refetch categories even when fresh.")
    total_categories = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    success = models.PositiveIntegerField(default=0, help_text="Fetched now or already fresh.")
    failed = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0, help_text="Fresh in the taxonomy store, not refetched.")
    retry_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="retries")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "-created_at"], name="ebay_fetch_owner_created")]

    def __str__(self):
        return f"Category fetch {self.job_id} ({self.parent_category or self.marketplace_id})"

    @property
    def parent_category(self):
        if not self.parent_category_id:
            return ""
        return f"{self.parent_category_name} ({self.parent_category_id})"


class CategoryFetchItem(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        FETCHED = "fetched"
        SKIPPED = "skipped"
        FAILED = "failed"

    fetch = models.ForeignKey(CategoryFetch, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField(help_text="Order of fetching; a category that hit a transient "
                                                     "error moves to the back.")
    category_id = models.CharField(max_length=20)
    category_name = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["fetch", "category_id"], name="ebay_fetch_item_unique")]
        indexes = [models.Index(fields=["fetch", "status", "position"], name="ebay_fetch_item_todo")]

    def __str__(self):
        return f"{self.category_name} ({self.category_id}): {self.status}"


class CategoryAspects(models.Model):
    """The taxonomy store: the item aspects of a leaf category, as eBay's getItemAspectsForCategory gave
    them. Read it with services.aspects_for()."""

    marketplace_id = models.CharField(max_length=40)
    category_tree_id = models.CharField(max_length=20)
    category_tree_version = models.CharField(max_length=20, blank=True)
    category_id = models.CharField(max_length=20)
    category_name = models.CharField(max_length=200, blank=True)
    aspects = models.JSONField(default=list)
    fetched_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "category aspects"
        ordering = ["category_tree_id", "category_id"]
        constraints = [models.UniqueConstraint(fields=["category_tree_id", "category_id"],
                                               name="ebay_aspects_unique")]
        indexes = [models.Index(fields=["marketplace_id", "category_id"], name="ebay_aspects_marketplace")]

    def __str__(self):
        return f"{self.category_name} ({self.category_id}) in tree {self.category_tree_id}"


class Promotion(models.Model):
    """One listing's Promoted Listings ad request and its outcome: answers "is this listing promoted?" and
    keeps the history after the job rows are cleaned up."""

    class Status(models.TextChoices):
        PENDING = "pending"
        PROMOTED = "promoted"
        FAILED = "failed"
        CANCELLED = "cancelled"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="promotions")
    job = models.OneToOneField(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="promotion")
    batch_id = models.UUIDField(null=True, blank=True)
    source = models.CharField(max_length=20, default="api", help_text="api, batch, auto_promote, command, admin")
    listing_id = models.CharField(max_length=20)
    campaign_id = models.CharField(max_length=40)
    ad_rate = models.DecimalField(max_digits=4, decimal_places=1)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    ad_id = models.CharField(max_length=40, blank=True)
    already_existed = models.BooleanField(default=False, help_text="eBay answered 35036: the ad existed.")
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    # Set before createAdByListingId is sent, cleared when its answer is recorded: if set at the start of an
    # attempt, the previous one died mid-call and eBay may have created the ad.
    create_sent_at = models.DateTimeField(null=True, blank=True)
    promoted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "listing_id"], condition=Q(status="pending"),
                                    name="ebay_one_pending_promotion_per_listing"),
        ]
        indexes = [
            models.Index(fields=["owner", "listing_id"], name="ebay_promotion_listing"),
            models.Index(fields=["status", "updated_at"], name="ebay_promotion_status"),
            models.Index(fields=["batch_id"], name="ebay_promotion_batch"),
        ]

    def __str__(self):
        return f"Promotion of listing {self.listing_id} ({self.status})"
