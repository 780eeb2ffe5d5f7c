from django.core.files.uploadedfile import SimpleUploadedFile

from queueapp import runner
from queueapp.models import Job


def upload(content: bytes, name="report.csv", content_type="text/csv"):
    return SimpleUploadedFile(name, content, content_type=content_type)


def start(api, revenue: bytes | None, design: bytes | None = None, asin="B0AAAAAAA1", marketplace="US", **extra):
    data = {"asin_or_url": asin, **extra}
    if marketplace is not None:
        data["marketplace"] = marketplace
    if revenue is not None:
        data["revenue_csv"] = upload(revenue, "BusinessReport-3-31-24.csv")
    if design is not None:
        data["design_csv"] = upload(design, "designs.csv")
    return api.post("/api/analysis/", data, format="multipart")


def run(api, revenue, design=None, **kwargs):
    """Start through the API, run the job in this process, return (job id, result)."""
    response = start(api, revenue, design, **kwargs)
    assert response.status_code == 202, response.data
    job_id = response.data["job_id"]
    runner.run_job(job_id)
    job = Job.objects.get(id=job_id)
    assert job.status == "succeeded", job.error
    result = api.get(f"/api/jobs/{job_id}/result")
    assert result.status_code == 200
    return job_id, result.data["result"]
