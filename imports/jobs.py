"""The product import job kind. The work is in services.run_product_import."""

from django.conf import settings
from rest_framework import serializers

from queueapp.engine import exponential, job_kind

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
