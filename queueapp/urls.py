from rest_framework.routers import DefaultRouter

from .api import JobViewSet

# Accept both /api/jobs/{id}/status and /api/jobs/{id}/status/.
router = DefaultRouter(trailing_slash="/?")
router.register("jobs", JobViewSet, basename="job")

urlpatterns = router.urls
