from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.authtoken.views import obtain_auth_token

from analysis import views as analysis_views
from ebay import views as ebay_views
from imports import views as imports_views
from queueapp import page_urls

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
# Server-rendered pages: the engine's (dashboard, job page, login) and each app's start form, in one "pages"
# namespace. Importing the apps' views also registers their sections of the job page.
pages = [
    *page_urls.urlpatterns,
    path("start/import/", imports_views.start_import, name="start-import"),
    path("start/category-fetch/", ebay_views.start_category_fetch, name="start-category-fetch"),
    path("start/promotions/", ebay_views.start_promotions, name="start-promotions"),
    path("start/analysis/", analysis_views.start_analysis, name="start-analysis"),
]
urlpatterns += [
    # After the API, so that it keeps its paths.
    path("", include((pages, "pages"))),
]
