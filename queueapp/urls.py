from rest_framework.routers import DefaultRouter, DynamicRoute

from .api import JobViewSet


class JobsRouter(DefaultRouter):
    """Lists and details end in a slash (/api/jobs/{id}/); actions take it or leave it
    (/api/jobs/{id}/status), and reverse() gives them without."""

    routes = [
        route._replace(url=route.url.replace("{trailing_slash}$", "/?$"))
        if isinstance(route, DynamicRoute) else route
        for route in DefaultRouter.routes
    ]


router = JobsRouter()
router.register("jobs", JobViewSet, basename="job")

urlpatterns = router.urls
