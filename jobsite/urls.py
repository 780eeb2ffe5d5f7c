from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.authtoken.views import obtain_auth_token

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/auth/token/", obtain_auth_token, name="api-token"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
    path("api/", include("queueapp.urls")),
    path("api/", include("imports.urls")),
    path("api/ebay/", include("ebay.urls")),
    path("api/analysis/", include("analysis.urls")),
]
urlpatterns += [
    # Server-rendered pages (dashboard, job page, start forms, login); after the API so that it keeps its paths.
    path("", include("queueapp.page_urls")),
]
