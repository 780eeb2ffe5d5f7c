"""REST endpoints for imports and products. Thin: checks, services, serializers."""

from django.http import Http404, StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from queueapp.api import JobStatusSerializer, job_urls

from . import services
from .models import ImportLog, ImportRowError, PriceRecord, Product, StockRecord
from .search import search_products

MAX_ERRORS_IN_DEALER_RESPONSE = 1000


class UploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="An .xlsx workbook (first sheet) or a .csv file with a header row.",
                                 allow_empty_file=True)


class RowErrorSerializer(serializers.ModelSerializer):
    row = serializers.IntegerField(source="row_number")

    class Meta:
        model = ImportRowError
        fields = ["row", "column", "value", "message"]


class ImportStatusSerializer(serializers.ModelSerializer):
    """The seed's status document (snake_case), with our extra counts and links."""

    import_id = serializers.IntegerField(source="pk")
    job_id = serializers.UUIDField(source="job.id", allow_null=True, default=None)
    status = serializers.SerializerMethodField(help_text="pending, processing, completed or failed")
    progress = serializers.SerializerMethodField()
    results = serializers.SerializerMethodField()
    uploaded_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    status_url = serializers.SerializerMethodField()
    errors_url = serializers.SerializerMethodField()
    retry_url = serializers.SerializerMethodField()
    job = serializers.SerializerMethodField()
    search_index = serializers.SerializerMethodField(
        help_text="Product imports: whether the product search has caught up with this import (it is "
                  "updated by a job of its own once the import ends): waiting (the import runs), updating, "
                  "or current, with the time it caught up. Null for dealer imports.")

    class Meta:
        model = ImportLog
        fields = ["import_id", "job_id", "type", "status", "import_status", "file_name", "file_format",
                  "file_size", "sha256", "uploaded_by", "progress", "created_at", "started_at", "completed_at",
                  "results", "error", "warnings", "search_index", "status_url", "errors_url", "retry_url", "job"]

    def get_status(self, log) -> str:
        return log.import_status.lower()

    def get_progress(self, log) -> dict:
        total = log.total_rows if log.total_rows is not None else None
        current = log.processed_rows
        if log.import_status == ImportLog.Status.COMPLETED:
            percentage = 100
        elif total:
            percentage = min(100, int(current * 100 / total))
        else:
            percentage = 0
        return {"current": current, "total": total, "percentage": percentage}

    def get_results(self, log) -> dict:
        return {
            "total_rows": log.total_rows, "success_count": log.success_count,
            "created_count": log.created_count, "updated_count": log.updated_count,
            "unchanged_count": log.unchanged_count, "error_count": log.error_count,
        }

    def get_search_index(self, log) -> dict | None:
        if log.type != ImportLog.Type.PRODUCTS:
            return None
        if log.search_indexed_at is not None:
            state = "current"
        elif log.import_status in (ImportLog.Status.COMPLETED, ImportLog.Status.FAILED):
            state = "updating"
        else:
            state = "waiting"
        return {"status": state, "indexed_at": log.search_indexed_at}

    def _url(self, name, log):
        return reverse(name, args=[log.pk], request=self.context.get("request"))

    def get_status_url(self, log) -> str:
        return self._url("import-detail", log)

    def get_errors_url(self, log) -> str:
        return self._url("import-errors", log)

    def get_retry_url(self, log) -> str | None:
        return self._url("import-retry", log) if log.type == ImportLog.Type.PRODUCTS else None

    def get_job(self, log) -> dict | None:
        if log.job is None:
            return None
        return {**JobStatusSerializer(log.job).data, **job_urls(log.job, self.context.get("request"))}


def _rejected(exc):
    body = {"file": exc.problems}
    if exc.warnings:
        body["warnings"] = exc.warnings
    return Response(body, status=status.HTTP_400_BAD_REQUEST)


def _uploaded_file(request):
    form = UploadSerializer(data=request.data)
    form.is_valid(raise_exception=True)
    return form.validated_data["file"]


class ProductImportView(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request={"multipart/form-data": UploadSerializer},
                   responses={202: ImportStatusSerializer, 400: dict})
    def post(self, request):
        """Check the file (type, size, zip safety, headers) and start the import in the background."""
        try:
            import_log = services.start_product_import(_uploaded_file(request), request.user)
        except services.UploadRejected as exc:
            return _rejected(exc)
        body = ImportStatusSerializer(import_log, context={"request": request}).data
        return Response({
            "success": True,
            "message": "Product import started in background",
            "import_id": import_log.pk,
            "job_id": str(import_log.job_id),
            "status_url": body["status_url"],
            "job_status_url": job_urls(import_log.job, request)["status_url"],
            "warnings": import_log.warnings,
            "import": body,
        }, status=status.HTTP_202_ACCEPTED)


class DealerImportView(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request={"multipart/form-data": UploadSerializer},
                   responses={200: ImportStatusSerializer, 400: dict})
    def post(self, request):
        """Import dealers at once (small files); answers with the results and the row errors."""
        try:
            import_log = services.import_dealers(_uploaded_file(request), request.user)
        except services.UploadRejected as exc:
            return _rejected(exc)
        errors = import_log.row_errors.order_by("row_number", "id")
        body = ImportStatusSerializer(import_log, context={"request": request}).data
        return Response({
            "success": True,
            "message": "Dealer import completed",
            **body,
            "errors": RowErrorSerializer(errors[:MAX_ERRORS_IN_DEALER_RESPONSE], many=True).data,
            "errors_truncated": errors.count() > MAX_ERRORS_IN_DEALER_RESPONSE,
        })


class ImportListView(generics.ListAPIView):
    """Your imports, newest first (staff: everyone's)."""

    serializer_class = ImportStatusSerializer

    def get_queryset(self):
        logs = services.visible_imports(self.request.user)
        kind = self.request.query_params.get("type")
        if kind:
            wanted = kind.upper()
            if wanted not in ImportLog.Type.values:
                raise serializers.ValidationError({"type": [f"Use one of {', '.join(ImportLog.Type.values)}."]})
            logs = logs.filter(type=wanted)
        return logs


def _visible_import(request, pk):
    import_log = services.visible_imports(request.user).filter(pk=pk).first()
    if import_log is None:
        raise Http404("No such import.")
    return services.sync_with_job(import_log)


class ImportDetailView(APIView):
    @extend_schema(responses=ImportStatusSerializer)
    def get(self, request, pk):
        """Status, progress (current/total/percentage), times, results and error of one import."""
        import_log = _visible_import(request, pk)
        return Response(ImportStatusSerializer(import_log, context={"request": request}).data)


class ImportRetryView(APIView):
    @extend_schema(request=None, responses={202: ImportStatusSerializer, 409: dict})
    def post(self, request, pk):
        """Run a failed product import again; it resumes after its last committed chunk."""
        import_log = _visible_import(request, pk)
        try:
            import_log = services.retry_import(import_log)
        except services.ImportNotRetryable as exc:
            return Response({"detail": str(exc), "status": import_log.import_status.lower()},
                            status=status.HTTP_409_CONFLICT)
        return Response(ImportStatusSerializer(import_log, context={"request": request}).data,
                        status=status.HTTP_202_ACCEPTED)


class ImportErrorsCsvView(APIView):
    @extend_schema(responses={(200, "text/csv"): str})
    def get(self, request, pk):
        """The rejected rows as CSV (row, column, value, message), safe to open in a spreadsheet."""
        import_log = _visible_import(request, pk)
        response = StreamingHttpResponse(services.error_report_lines(import_log), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="import-{import_log.pk}-errors.csv"'
        return response


class ProductSerializer(serializers.ModelSerializer):
    class Meta:
        model = Product
        fields = ["id", "code", "name", "brand", "category", "description", "barcode", "price", "stock",
                  "created_at", "updated_at"]


class PriceRecordSerializer(serializers.ModelSerializer):
    class Meta:
        model = PriceRecord
        fields = ["price", "valid_from", "valid_to", "import_log"]


class StockRecordSerializer(serializers.ModelSerializer):
    class Meta:
        model = StockRecord
        fields = ["quantity", "valid_from", "valid_to", "import_log"]


class ProductDetailSerializer(ProductSerializer):
    price_history = serializers.SerializerMethodField()
    stock_history = serializers.SerializerMethodField()

    class Meta(ProductSerializer.Meta):
        fields = ProductSerializer.Meta.fields + ["price_history", "stock_history"]

    def get_price_history(self, product) -> list:
        return PriceRecordSerializer(product.price_history.order_by("-valid_from", "-id")[:100], many=True).data

    def get_stock_history(self, product) -> list:
        return StockRecordSerializer(product.stock_history.order_by("-valid_from", "-id")[:100], many=True).data


class ProductListView(generics.ListAPIView):
    """The catalogue. ?search= finds products by code, name and brand (every word, as a prefix)."""

    serializer_class = ProductSerializer

    @extend_schema(parameters=[OpenApiParameter("search", str, description="Words of a code, name or brand")])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        query = self.request.query_params.get("search")
        if query is None:
            return Product.objects.order_by("code")
        if len(query) > 200:
            raise serializers.ValidationError({"search": ["At most 200 characters."]})
        return search_products(query)


class ProductDetailView(generics.RetrieveAPIView):
    """One product with its price and stock history (newest first)."""

    serializer_class = ProductDetailSerializer
    queryset = Product.objects.all()
    lookup_field = "code"

