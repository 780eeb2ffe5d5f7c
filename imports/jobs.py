"""The imports' job kinds: the product import, and the search refresh that follows each one. The work is
in services.run_product_import and services.run_search_refresh."""

from django.conf import settings
from django_q.models import Schedule
from rest_framework import serializers

from queueapp.engine import exponential, job_kind, register_schedule

from . import services


class ProductImportParams(serializers.Serializer):
    import_id = serializers.IntegerField(min_value=1, help_text="The ImportLog to run.")


@job_kind(
    services.PRODUCT_JOB_KIND,
    max_attempts=settings.IMPORTS_JOB_MAX_ATTEMPTS,
    backoff=exponential(base=60, cap=600),
    concurrency=settings.IMPORTS_JOB_CONCURRENCY,
    params=ProductImportParams,
    title="Product import",
)
def import_products(ctx):
    return services.run_product_import(ctx)


class SearchRefreshParams(serializers.Serializer):
    import_id = serializers.IntegerField(min_value=1, help_text="The ImportLog whose products to index.")


@job_kind(
    services.SEARCH_REFRESH_KIND,
    max_attempts=5,
    backoff=exponential(base=30, cap=300),
    # One at a time: a refresh then never reads products older than those a refresh before it indexed.
    concurrency=1,
    params=SearchRefreshParams,
    title="Product search update after an import",
)
def refresh_search(ctx):
    return services.run_search_refresh(ctx)


def queue_missing_search_refreshes():
    """Every 10 minutes: imports that ended without their search refresh queued (a lost worker)."""
    return {"queued": services.queue_missing_search_refreshes()}


register_schedule("imports: queue missing search refreshes", "imports.jobs.queue_missing_search_refreshes",
                  schedule_type=Schedule.MINUTES, minutes=10)
