"""The sales-analysis job kind."""

from django.conf import settings
from rest_framework import serializers

from queueapp.engine import exponential, job_kind, register_schedule

from . import services
from .marketplaces import ASIN_RE, MARKETPLACES


class SalesAnalysisParams(serializers.Serializer):
    """What the job needs; start_analysis() has checked the files and stored them in `storage`."""

    asin = serializers.RegexField(ASIN_RE)
    marketplace = serializers.ChoiceField(choices=sorted(MARKETPLACES))
    storage = serializers.RegexField(services.STORAGE_RE, help_text="Folder under MEDIA_ROOT with the uploads.")
    revenue_filename = serializers.CharField(max_length=255)
    design_filename = serializers.CharField(max_length=255, allow_blank=True, default="")


@job_kind(
    services.KIND,
    # Bad content fails at once (PermanentError); a second attempt is for a crashed or restarted worker.
    max_attempts=settings.ANALYSIS_MAX_ATTEMPTS,
    backoff=exponential(base=30, cap=300),
    # CPU-bound: more at once than there are cores only makes each slower.
    concurrency=settings.ANALYSIS_CONCURRENCY,
    params=SalesAnalysisParams,
    title="Sales analysis (CSV)",
    steps=services.STEPS,
)
def sales_analysis(ctx):
    return services.run_analysis(ctx)


def sweep_orphan_uploads():
    """Daily: upload folders left without a job by a process that died between storing and queueing."""
    return {"removed": services.remove_orphan_folders()}


register_schedule("analysis: remove orphan upload folders", "analysis.jobs.sweep_orphan_uploads")
