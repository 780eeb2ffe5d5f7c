from django.urls import path

from . import api

urlpatterns = [
    path("imports/", api.ImportListView.as_view(), name="import-list"),
    path("imports/products", api.ProductImportView.as_view(), name="import-products"),
    path("imports/dealers", api.DealerImportView.as_view(), name="import-dealers"),
    path("imports/<int:pk>", api.ImportDetailView.as_view(), name="import-detail"),
    path("imports/<int:pk>/errors.csv", api.ImportErrorsCsvView.as_view(), name="import-errors"),
    path("imports/<int:pk>/retry", api.ImportRetryView.as_view(), name="import-retry"),
    path("products/", api.ProductListView.as_view(), name="product-list"),
    path("products/<str:code>/", api.ProductDetailView.as_view(), name="product-detail"),
]
