from django.db import models

from queueapp.engine import Job


class SalesAnalysis(models.Model):
    """The inputs and outputs of one analysis job: what was uploaded, where it is kept, what came out.

    The figures themselves are the job's result; this row exists for the files, which the job's
    deletion (the retention cleanup) removes with it."""

    job = models.OneToOneField(Job, primary_key=True, on_delete=models.CASCADE, related_name="sales_analysis")
    asin = models.CharField(max_length=10)
    marketplace = models.CharField(max_length=2)
    # Folder under MEDIA_ROOT holding revenue.csv, design.csv and report.xlsx.
    storage = models.CharField(max_length=200)
    revenue_filename = models.CharField(max_length=255)
    revenue_size = models.BigIntegerField()
    design_filename = models.CharField(max_length=255, blank=True)
    design_size = models.BigIntegerField(null=True, blank=True)
    rows_used = models.BigIntegerField(null=True, blank=True)
    rows_rejected = models.BigIntegerField(null=True, blank=True)
    report_file = models.CharField(max_length=255, blank=True, help_text="Path under MEDIA_ROOT.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "sales analysis"
        verbose_name_plural = "sales analyses"

    def __str__(self):
        return f"{self.asin} ({self.marketplace}) {self.job_id}"
