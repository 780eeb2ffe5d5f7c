"""Routes of the server-rendered pages (included at the site root by jobsite/urls.py)."""

from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

app_name = "pages"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    # POST only (Django 5): a link or a prefetch cannot log anyone out.
    path("logout/", auth_views.LogoutView.as_view(next_page="pages:login"), name="logout"),
    path("jobs/<uuid:job_id>/", views.job_page, name="job"),
    path("start/demo/", views.start_demo, name="start-demo"),
    path("start/import/", views.start_import, name="start-import"),
    path("start/category-fetch/", views.start_category_fetch, name="start-category-fetch"),
    path("start/promotions/", views.start_promotions, name="start-promotions"),
    path("start/analysis/", views.start_analysis, name="start-analysis"),
]
