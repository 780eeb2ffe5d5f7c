"""eBay endpoints: category fetches (seed 000), the promotion queue (seed 001), the account, publishOffer.
Thin: validation here, the work in services."""

from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from queueapp.api import job_urls
from queueapp.engine import JobStatus, NotAllowed, cancel

from . import services
from .models import EbayAccount, Promotion

DIGITS = r"^[0-9]{1,20}$"


def error_response(exc: services.ServiceError):
    body = {exc.field: [exc.message]} if exc.field else {"detail": exc.message}
    response = Response(body, status=exc.status)
    if exc.retry_after:
        response["Retry-After"] = str(int(exc.retry_after))
    return response


def _flag(request, name):
    value = request.query_params.get(name)
    if value is None:
        return None
    if value.lower() in {"1", "true", "yes"}:
        return True
    if value.lower() in {"0", "false", "no"}:
        return False
    raise serializers.ValidationError({name: [f"Use true or false, not {value!r}."]})


# -- category fetches --------------------------------------------------------------------------------------
class CategoryFetchRequest(serializers.Serializer):
    marketplace_id = serializers.RegexField(r"^EBAY_[A-Z_]{2,30}$", required=False, default=None,
                                            allow_null=True, help_text="Default EBAY_US (EBAY_MARKETPLACE_ID).",
                                            error_messages={"invalid": "Use an eBay marketplace id such as EBAY_US."})
    parent_category_id = serializers.RegexField(DIGITS, required=False, allow_null=True, allow_blank=True,
                                                help_text="Only leaves under this category, e.g. 26395.",
                                                error_messages={"invalid": "A category id is a number, e.g. 26395."})
    max_categories = serializers.IntegerField(required=False, allow_null=True, min_value=1,
                                              max_value=settings.EBAY_CATEGORY_FETCH_MAX_CATEGORIES)
    force = serializers.BooleanField(required=False, default=False,
                                     help_text="Refetch categories fetched within the freshness window.")


class CategoryFetchStatus(serializers.Serializer):
    """The seed's status fields (snake_case) plus percentage, rate and ETA."""

    job_id = serializers.UUIDField()
    total_categories = serializers.IntegerField()
    processed = serializers.IntegerField()
    success = serializers.IntegerField()
    failed = serializers.IntegerField()
    skipped = serializers.IntegerField()
    status = serializers.ChoiceField(["queued", "processing", "completed", "failed", "cancelled"])
    job_status = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    parent_category = serializers.CharField(allow_null=True)
    marketplace_id = serializers.CharField()
    category_tree_id = serializers.CharField()
    category_tree_version = serializers.CharField()
    errors = inline_serializer("CategoryError", {"category_id": serializers.CharField(),
                                                 "category_name": serializers.CharField(),
                                                 "error": serializers.CharField()}, many=True)
    error_count = serializers.IntegerField()
    percentage = serializers.IntegerField()
    rate_per_second = serializers.FloatField(allow_null=True)
    elapsed_seconds = serializers.FloatField(allow_null=True)
    eta_seconds = serializers.FloatField(allow_null=True)
    message = serializers.CharField()
    error = serializers.CharField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    retry_of = serializers.UUIDField(allow_null=True)


def fetch_body(fetch, request, errors_limit=1000):
    body = services.fetch_status(fetch, errors_limit=errors_limit)
    body = CategoryFetchStatus(body).data
    body["status_url"] = reverse("ebay-category-fetch-detail", args=[fetch.job_id], request=request)
    body["job_status_url"] = job_urls(fetch.job, request)["status_url"]
    return body


class CategoryFetchListCreate(APIView):
    """Start a category fetch (202 at once), or list active and recent ones (the seed's job index)."""

    @extend_schema(request=CategoryFetchRequest, responses={202: dict, 400: dict})
    def post(self, request):
        form = CategoryFetchRequest(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        try:
            fetch = services.start_category_fetch(
                request.user, marketplace_id=data.get("marketplace_id"),
                parent_category_id=data.get("parent_category_id") or None,
                max_categories=data.get("max_categories"), force=data.get("force", False),
            )
        except services.ServiceError as exc:
            return error_response(exc)
        return Response({
            "ok": True,
            "job_id": str(fetch.job_id),
            "total_categories": fetch.total_categories,
            "parent_category": fetch.parent_category or None,
            "marketplace_id": fetch.marketplace_id,
            "category_tree_id": fetch.category_tree_id,
            "status": services.seed_status(fetch.job),
            "message": f"Background job created: {fetch.total_categories} categories queued. Follow it at the "
                       "status URL.",
            "status_url": reverse("ebay-category-fetch-detail", args=[fetch.job_id], request=request),
            **{f"job_{k}": v for k, v in job_urls(fetch.job, request).items()},
        }, status=status.HTTP_202_ACCEPTED)

    @extend_schema(parameters=[OpenApiParameter("active", bool, description="Only queued, waiting or running"),
                               OpenApiParameter("page", int)],
                   responses=CategoryFetchStatus(many=True))
    def get(self, request):
        fetches = services.fetches_for(request.user).order_by("-created_at")
        if _flag(request, "active"):
            fetches = fetches.filter(job__status__in=[JobStatus.QUEUED, JobStatus.WAITING, JobStatus.RUNNING])
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(fetches, request, view=self)
        return paginator.get_paginated_response([fetch_body(f, request, errors_limit=20) for f in page])


class CategoryFetchDetail(APIView):
    @extend_schema(responses=CategoryFetchStatus)
    def get(self, request, job_id):
        fetch = get_object_or_404(services.fetches_for(request.user), job_id=job_id)
        return Response(fetch_body(fetch, request))


class CategoryFetchRetryFailed(APIView):
    @extend_schema(request=None, responses={202: dict, 409: dict})
    def post(self, request, job_id):
        """A new fetch job with only the categories that failed in this one."""
        fetch = get_object_or_404(services.fetches_for(request.user), job_id=job_id)
        try:
            retry = services.retry_failed_categories(fetch, request.user)
        except services.ServiceError as exc:
            return error_response(exc)
        return Response({**fetch_body(retry, request),
                         "message": f"Re-queued {retry.total_categories} failed categories as a new job."},
                        status=status.HTTP_202_ACCEPTED)


class CategoryFetchCancel(APIView):
    @extend_schema(request=None, responses={200: dict, 202: dict, 409: dict})
    def post(self, request, job_id):
        fetch = get_object_or_404(services.fetches_for(request.user), job_id=job_id)
        try:
            job = cancel(fetch.job)
        except NotAllowed as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        fetch.job = job
        code = status.HTTP_202_ACCEPTED if job.status == JobStatus.RUNNING else status.HTTP_200_OK
        return Response(fetch_body(fetch, request), status=code)


class CategoryAspectsDetail(APIView):
    @extend_schema(parameters=[OpenApiParameter("marketplace_id", str)], responses=dict)
    def get(self, request, category_id):
        """The taxonomy store: a leaf category's stored aspects."""
        marketplace_id = request.query_params.get("marketplace_id") or settings.EBAY_MARKETPLACE_ID
        stored = services.aspects_for(category_id, marketplace_id)
        if stored is None:
            return Response({"detail": f"No aspects stored for category {category_id} on {marketplace_id}; "
                                       "run a category fetch that includes it."}, status=status.HTTP_404_NOT_FOUND)
        return Response({"category_id": stored.category_id, "category_name": stored.category_name,
                         "marketplace_id": stored.marketplace_id, "category_tree_id": stored.category_tree_id,
                         "category_tree_version": stored.category_tree_version, "fetched_at": stored.fetched_at,
                         "aspects": stored.aspects})


# -- promotions --------------------------------------------------------------------------------------------
class PromotionEntry(serializers.Serializer):
    listing_id = serializers.RegexField(DIGITS, error_messages={"invalid": "A listing id is a number of up to 20 "
                                                                           "digits, e.g. 177681098666."})
    ad_rate = serializers.DecimalField(max_digits=4, decimal_places=1, min_value=2, max_value=100,
                                       coerce_to_string=False,
                                       help_text="Ad rate (bid percentage), 2.0 to 100.0, one decimal.")
    campaign_id = serializers.RegexField(DIGITS, required=False, allow_null=True, allow_blank=True,
                                         error_messages={"invalid": "A campaign id is a number."})


class PromotionRequest(serializers.Serializer):
    """One promotion ({listing_id, ad_rate, campaign_id?}) or a batch ({batch: [...]})."""

    listing_id = serializers.CharField(required=False)
    ad_rate = serializers.CharField(required=False)
    campaign_id = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    batch = PromotionEntry(many=True, required=False)

    def validate_batch(self, value):
        if not value:
            raise serializers.ValidationError("The batch is empty.")
        if len(value) > settings.EBAY_PROMOTION_BATCH_MAX:
            raise serializers.ValidationError(
                f"At most {settings.EBAY_PROMOTION_BATCH_MAX} listings per batch; got {len(value)}.")
        return value

    def validate(self, attrs):
        single = {k: self.initial_data.get(k) for k in ("listing_id", "ad_rate", "campaign_id")
                  if k in self.initial_data}
        if "batch" in attrs:
            if single:
                raise serializers.ValidationError({"batch": ["Send either batch or listing_id/ad_rate, not both."]})
            return {"entries": attrs["batch"], "batch": True}
        entry = PromotionEntry(data=single)
        if not entry.is_valid():
            raise serializers.ValidationError(entry.errors)
        return {"entries": [entry.validated_data], "batch": False}


class PromotionStatus(serializers.ModelSerializer):
    """The seed's job fields (snake_case) and the Promotion outcome."""

    id = serializers.UUIDField(source="job_id")
    user = serializers.CharField(source="owner.username")
    ad_rate = serializers.DecimalField(max_digits=4, decimal_places=1, coerce_to_string=False)
    attempts = serializers.SerializerMethodField()
    max_attempts = serializers.SerializerMethodField()
    next_retry_at = serializers.SerializerMethodField()
    job_status = serializers.SerializerMethodField()
    status_url = serializers.SerializerMethodField()

    class Meta:
        model = Promotion
        fields = ["id", "user", "listing_id", "ad_rate", "campaign_id", "attempts", "max_attempts",
                  "next_retry_at", "created_at", "updated_at", "last_error", "status", "job_status", "ad_id",
                  "already_existed", "promoted_at", "batch_id", "source", "status_url"]

    def get_attempts(self, p) -> int:
        return p.job.attempts if p.job else p.attempts

    def get_max_attempts(self, p) -> int:
        return p.job.max_attempts if p.job else settings.EBAY_PROMOTION_MAX_ATTEMPTS

    def get_next_retry_at(self, p) -> str | None:
        if p.job and p.job.status == JobStatus.WAITING and p.job.run_after:
            return serializers.DateTimeField().to_representation(p.job.run_after)
        return None

    def get_job_status(self, p) -> str | None:
        return p.job.status if p.job else None

    def get_status_url(self, p) -> str | None:
        if not p.job_id:
            return None
        return reverse("ebay-promotion-detail", args=[p.job_id], request=self.context.get("request"))


def queued_body(queued, request):
    return {**PromotionStatus(queued.promotion, context={"request": request}).data, "duplicate": not queued.created}


class PromotionListCreate(APIView):
    @extend_schema(request=PromotionRequest, responses={202: dict, 400: dict})
    def post(self, request):
        """Queue one promotion or a batch; answers at once with the job id(s)."""
        form = PromotionRequest(data=request.data)
        form.is_valid(raise_exception=True)
        entries = form.validated_data["entries"]
        source = "batch" if form.validated_data["batch"] else "api"
        try:
            queued = services.queue_promotions(request.user, entries, source=source)
        except services.ServiceError as exc:
            return error_response(exc)
        delay = settings.EBAY_PROMOTION_FIRST_DELAY_SECONDS
        if not form.validated_data["batch"]:
            item = queued[0]
            message = (f"Promotion queued. Its first attempt is in about {delay} s." if item.created else
                       "This listing already has a pending promotion; no second job was created.")
            return Response({"success": True, "job_id": str(item.promotion.job_id), "message": message,
                             "status_url": queued_body(item, request)["status_url"],
                             "promotion": queued_body(item, request)}, status=status.HTTP_202_ACCEPTED)
        created = sum(1 for q in queued if q.created)
        return Response({
            "success": True,
            "job_ids": [str(q.promotion.job_id) for q in queued],
            "count": len(queued),
            "queued": created,
            "duplicates": len(queued) - created,
            "message": f"Queued {created} promotion jobs"
                       + (f" ({len(queued) - created} listings already had one pending)" if created < len(queued) else "")
                       + f". First attempts start in about {delay} s, {settings.EBAY_PROMOTION_STAGGER_SECONDS:g} s "
                         "apart.",
            "promotions": [queued_body(q, request) for q in queued],
        }, status=status.HTTP_202_ACCEPTED)

    @extend_schema(parameters=[OpenApiParameter("listing_id", str), OpenApiParameter("status", str),
                               OpenApiParameter("page", int)], responses=PromotionStatus(many=True))
    def get(self, request):
        """Promotion history; ?listing_id= answers "is this listing promoted?"."""
        promotions = services.promotions_for(request.user).order_by("-created_at")
        if request.query_params.get("listing_id"):
            promotions = promotions.filter(listing_id=request.query_params["listing_id"])
        wanted = request.query_params.get("status")
        if wanted:
            if wanted not in Promotion.Status.values:
                return Response({"status": [f"Use one of {', '.join(Promotion.Status.values)}."]}, status=400)
            promotions = promotions.filter(status=wanted)
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(promotions, request, view=self)
        return paginator.get_paginated_response(PromotionStatus(page, many=True, context={"request": request}).data)


class PromotionStats(APIView):
    @extend_schema(responses=dict)
    def get(self, request):
        return Response(services.promotion_stats(request.user))


class PromotionDetail(APIView):
    @extend_schema(responses=PromotionStatus)
    def get(self, request, job_id):
        promotion = get_object_or_404(services.promotions_for(request.user), job_id=job_id)
        return Response(PromotionStatus(promotion, context={"request": request}).data)


# -- account and publishOffer ------------------------------------------------------------------------------
class AccountRequest(serializers.Serializer):
    refresh_token = serializers.CharField(required=False, write_only=True, max_length=4000,
                                          help_text="From eBay's OAuth consent flow; stored encrypted.")
    default_campaign_id = serializers.RegexField(DIGITS, required=False, allow_blank=True)
    marketplace_id = serializers.RegexField(r"^EBAY_[A-Z_]{2,30}$", required=False)


def account_body(account):
    return {"connected": bool(account and account.refresh_token_encrypted),
            "environment": account.environment if account else None,
            "default_campaign_id": account.default_campaign_id if account else "",
            "marketplace_id": account.marketplace_id if account else settings.EBAY_MARKETPLACE_ID,
            "access_token_expires_at": account.access_token_expires_at if account else None}


class Account(APIView):
    @extend_schema(responses=dict)
    def get(self, request):
        return Response(account_body(EbayAccount.objects.filter(user=request.user).first()))

    @extend_schema(request=AccountRequest, responses=dict)
    def put(self, request):
        """Connect eBay (refresh_token) and set the default campaign and marketplace."""
        form = AccountRequest(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        if not data.get("refresh_token") and not EbayAccount.objects.filter(user=request.user).exists():
            return Response({"refresh_token": ["Required to connect an eBay account."]}, status=400)
        account = services.connect_account(request.user, data.get("refresh_token"),
                                           default_campaign_id=data.get("default_campaign_id"),
                                           marketplace_id=data.get("marketplace_id"))
        return Response(account_body(account))


class MerchantData(serializers.Serializer):
    auto_promote = serializers.BooleanField(required=False, default=False)
    auto_promote_ad_rate = serializers.DecimalField(max_digits=4, decimal_places=1, min_value=2, max_value=100,
                                                    required=False, allow_null=True)

    def validate(self, attrs):
        if attrs.get("auto_promote") and attrs.get("auto_promote_ad_rate") is None:
            raise serializers.ValidationError({"auto_promote_ad_rate": ["Required when auto_promote is true."]})
        return attrs


class PublishRequest(serializers.Serializer):
    merchant_data = MerchantData(required=False)


class PublishOffer(APIView):
    @extend_schema(request=PublishRequest, responses=dict)
    def post(self, request, offer_id):
        """Publish an offer (Inventory publishOffer); auto_promote queues the listing's promotion."""
        if not offer_id.isdigit():
            return Response({"offer_id": ["An offer id is a number."]}, status=400)
        form = PublishRequest(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            result = services.publish_offer(request.user, offer_id, form.validated_data.get("merchant_data"))
        except services.ServiceError as exc:
            return error_response(exc)
        promotion = result.pop("promotion")
        result["promotion"] = queued_body(promotion, request) if promotion else None
        return Response(result, status=status.HTTP_200_OK)

