"""The eBay job kinds. Their policies come from settings (EBAY_*), read when the kinds register."""

from django.conf import settings

from queueapp.engine import exponential, job_kind

from . import services


@job_kind(
    services.CATEGORY_FETCH_KIND,
    title="Fetch eBay category aspects",
    max_attempts=settings.EBAY_CATEGORY_FETCH_MAX_ATTEMPTS,
    backoff=exponential(base=60, cap=900),
    concurrency=settings.EBAY_CATEGORY_FETCH_CONCURRENCY,
    # Slices let other jobs (and other fetches) take turns on the workers; the checkpoint is the
    # per-category status, so a slice can end after any category.
    slice_seconds=settings.EBAY_CATEGORY_FETCH_SLICE_SECONDS,
)
def category_fetch(ctx):
    return services.run_category_fetch(ctx)


@job_kind(
    services.PROMOTION_KIND,
    title="Promote an eBay listing",
    # Seed 001: retries after 2, 4, 8 and 10 (cap) minutes, 5 attempts, at most 10 starts a minute.
    max_attempts=settings.EBAY_PROMOTION_MAX_ATTEMPTS,
    backoff=exponential(base=settings.EBAY_PROMOTION_BACKOFF_BASE_SECONDS,
                        cap=settings.EBAY_PROMOTION_BACKOFF_CAP_SECONDS,
                        jitter=settings.EBAY_PROMOTION_BACKOFF_JITTER),
    rate_per_minute=settings.EBAY_PROMOTION_RATE_PER_MINUTE,
)
def promotion(ctx):
    return services.run_promotion(ctx)
