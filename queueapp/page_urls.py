"""Routes of the engine's own pages. jobsite/urls.py adds each app's start pages to the same "pages"
namespace, so that queueapp knows no app."""

from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    # POST only (Django 5): a link or a prefetch cannot log anyone out.
    path("logout/", auth_views.LogoutView.as_view(next_page="pages:login"), name="logout"),
    path("jobs/<uuid:job_id>/", views.job_page, name="job"),
    path("start/demo/", views.start_demo, name="start-demo"),
]
