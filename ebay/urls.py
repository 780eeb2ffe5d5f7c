from django.urls import path

from . import api

urlpatterns = [
    path("category-fetches", api.CategoryFetchListCreate.as_view(), name="ebay-category-fetches"),
    path("category-fetches/<uuid:job_id>", api.CategoryFetchDetail.as_view(), name="ebay-category-fetch-detail"),
    path("category-fetches/<uuid:job_id>/retry-failed", api.CategoryFetchRetryFailed.as_view(),
         name="ebay-category-fetch-retry-failed"),
    path("category-fetches/<uuid:job_id>/cancel", api.CategoryFetchCancel.as_view(),
         name="ebay-category-fetch-cancel"),
    path("categories/<str:category_id>/aspects", api.CategoryAspectsDetail.as_view(), name="ebay-category-aspects"),
    path("promotions", api.PromotionListCreate.as_view(), name="ebay-promotions"),
    path("promotions/stats", api.PromotionStats.as_view(), name="ebay-promotion-stats"),
    path("promotions/<uuid:job_id>", api.PromotionDetail.as_view(), name="ebay-promotion-detail"),
    path("account", api.Account.as_view(), name="ebay-account"),
    path("offers/<str:offer_id>/publish", api.PublishOffer.as_view(), name="ebay-publish-offer"),
]
