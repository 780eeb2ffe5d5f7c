"""The eBay app's pages: the category-fetch and promotion forms and their sections of the job page."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import reverse

from queueapp.views import ERRORS_PER_PAGE, job_page_section, paged

from . import services
from .models import CategoryFetchItem

# eBay's marketplace ids (Taxonomy's get_default_category_tree_id takes these); the API also accepts any
# other EBAY_* id, so the form lets one be typed too.
EBAY_MARKETPLACES = [
    ("EBAY_US", "United States"), ("EBAY_GB", "United Kingdom"), ("EBAY_DE", "Germany"),
    ("EBAY_AU", "Australia"), ("EBAY_CA", "Canada"), ("EBAY_FR", "France"), ("EBAY_IT", "Italy"),
    ("EBAY_ES", "Spain"), ("EBAY_AT", "Austria"), ("EBAY_CH", "Switzerland"), ("EBAY_IE", "Ireland"),
    ("EBAY_NL", "Netherlands"), ("EBAY_BE", "Belgium"), ("EBAY_PL", "Poland"),
]


@login_required
def start_category_fetch(request):
    return render(request, "pages/start_category_fetch.html", {
        "nav": "category-fetch",
        "default_marketplace": settings.EBAY_MARKETPLACE_ID,
        "max_categories": settings.EBAY_CATEGORY_FETCH_MAX_CATEGORIES,
        "marketplaces": EBAY_MARKETPLACES,
    })


@login_required
def start_promotions(request):
    return render(request, "pages/start_promotions.html", {
        "nav": "promotions",
        "stats": services.promotion_stats(request.user),
        "batch_max": settings.EBAY_PROMOTION_BATCH_MAX,
        "first_delay": settings.EBAY_PROMOTION_FIRST_DELAY_SECONDS,
    })


@job_page_section("ebay.category_fetch")
def category_fetch_section(request, job):
    fetch = services.fetches_for(request.user).filter(job=job).first()
    if fetch is None:
        return None
    failed = fetch.items.filter(status=CategoryFetchItem.Status.FAILED).order_by("position")
    return {
        "fetch": fetch,
        "category_errors": paged(request, failed, ERRORS_PER_PAGE, "categories"),
        "retry_failed_url": reverse("ebay-category-fetch-retry-failed", args=[job.id]),
    }


@job_page_section("ebay.promotion")
def promotion_section(request, job):
    promotion = services.promotions_for(request.user).filter(job=job).first()
    return {"promotion": promotion} if promotion else None
