from django.urls import path

from .api import AnalysisReportView, AnalysisStatusView, StartAnalysisView

urlpatterns = [
    path("", StartAnalysisView.as_view(), name="analysis-start"),
    path("<uuid:job_id>", AnalysisStatusView.as_view(), name="analysis-status"),
    path("<uuid:job_id>/report.xlsx", AnalysisReportView.as_view(), name="analysis-report"),
]
