"""eBay features without HTTP: accounts and tokens, category fetches (seed 000), the promotion queue
(seed 001) and publishOffer with auto-promote. Views, commands and job handlers call these."""

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Avg, F, Q
from django.utils import timezone

from queueapp.engine import (
    Job,
    JobStatus,
    PermanentError,
    RetryLater,
    YieldSlice,
    submit,
)

from . import crypto
from .client import (
    AdAlreadyExists,
    AuthError,
    BadRequest,
    CampaignNotFound,
    EbayClient,
    EbayError,
    InvalidBid,
    ListingNotSynced,
    NotEligible,
    NotFound,
    QuotaExceeded,
    TransientError,
    UserTokens,
)
from .models import CategoryAspects, CategoryFetch, CategoryFetchItem, EbayAccount, Promotion

log = logging.getLogger("ebay")
worker_log = logging.getLogger("ebay.promotion_worker")

CATEGORY_FETCH_KIND = "ebay.category_fetch"
PROMOTION_KIND = "ebay.promotion"
# This many transient errors in a row mean eBay itself is unwell: the job backs off as a whole instead of
# pushing every category to the back of the queue.
MAX_CONSECUTIVE_TRANSIENT = 5
ACCESS_TOKEN_MARGIN = timedelta(minutes=5)


class ServiceError(Exception):
    """A request that cannot be carried out. `field` names the input at fault (400), `status` the HTTP
    answer the API gives, `retry_after` seconds when trying again later will help."""

    def __init__(self, message, *, field=None, status=400, retry_after=None):
        super().__init__(message)
        self.message, self.field, self.status, self.retry_after = message, field, status, retry_after


def upstream_error(exc, doing):
    """A ServiceError for an eBay failure during a request (not a job): 503 for transient ones."""
    if isinstance(exc, QuotaExceeded):
        return ServiceError(f"eBay's call quota is spent while {doing}; try again in {exc.retry_after:.0f} s.",
                            status=503, retry_after=exc.retry_after)
    if isinstance(exc, AuthError):
        return ServiceError(f"eBay refused our credentials while {doing}: {exc.message}. Check EBAY_CLIENT_ID/"
                            "EBAY_CLIENT_SECRET or reconnect the eBay account.", status=502)
    if exc.transient:
        return ServiceError(f"eBay is not answering properly while {doing} ({exc.describe()}); try again "
                            "in a minute.", status=503, retry_after=60)
    return ServiceError(f"eBay refused the request while {doing}: {exc.describe()}", status=502)


# -- accounts and user tokens ------------------------------------------------------------------------------
def _context(account_or_user_id, field):
    return f"ebay-account:{account_or_user_id}:{field}"


class AccountTokens(UserTokens):
    """A user's tokens, decrypted only in memory. Access tokens are kept (encrypted) until shortly before
    they expire, so the workers of all processes reuse them."""

    def __init__(self, account, grant):
        self.account = account
        self.grant = grant  # EbayClient.refresh_user_token

    def access_token(self):
        account = self.account
        if account.access_token_encrypted and account.access_token_expires_at and \
                account.access_token_expires_at > timezone.now() + ACCESS_TOKEN_MARGIN:
            try:
                return crypto.decrypt(account.access_token_encrypted, _context(account.user_id, "access"))
            except crypto.TokenDecryptError:
                pass  # a rotated key: get a fresh one below
        return self.refresh()

    def refresh(self):
        account = self.account
        try:
            refresh_token = crypto.decrypt(account.refresh_token_encrypted, _context(account.user_id, "refresh"))
        except crypto.TokenDecryptError as exc:
            raise AuthError(f"{exc}; reconnect the eBay account (PUT /api/ebay/account).") from exc
        token = self.grant(refresh_token)
        account.access_token_encrypted = crypto.encrypt(token.access_token, _context(account.user_id, "access"))
        account.access_token_expires_at = timezone.now() + timedelta(seconds=token.expires_in)
        EbayAccount.objects.filter(pk=account.pk).update(
            access_token_encrypted=account.access_token_encrypted,
            access_token_expires_at=account.access_token_expires_at, updated_at=timezone.now(),
        )
        return token.access_token


def connect_account(user, refresh_token, default_campaign_id=None, marketplace_id=None):
    """Store (or replace) a user's eBay refresh token, encrypted, and their defaults."""
    account, _ = EbayAccount.objects.get_or_create(
        user=user, defaults={"environment": settings.EBAY_ENV, "refresh_token_encrypted": "",
                             "marketplace_id": marketplace_id or settings.EBAY_MARKETPLACE_ID},
    )
    if refresh_token:
        account.refresh_token_encrypted = crypto.encrypt(refresh_token, _context(user.pk, "refresh"))
        account.access_token_encrypted = ""
        account.access_token_expires_at = None
        account.environment = settings.EBAY_ENV
    if default_campaign_id is not None:
        account.default_campaign_id = default_campaign_id
    if marketplace_id:
        account.marketplace_id = marketplace_id
    account.save()
    return account


def account_for(user):
    """The user's eBay account. With the fake eBay server a demo account is connected on first use, so
    the promotion queue works on a fresh checkout; against real eBay the user must connect first."""
    account = EbayAccount.objects.filter(user=user).first()
    if account is None and settings.EBAY_ENV == "fake":
        account = connect_account(user, f"fake-refresh-{user.pk}")
    if account is None or not account.refresh_token_encrypted:
        raise ServiceError(
            "No eBay account is connected for this user. Connect one with PUT /api/ebay/account "
            "{refresh_token, default_campaign_id} (a refresh token from eBay's OAuth consent flow).",
            field="account", status=400,
        )
    if account.environment != settings.EBAY_ENV:
        raise ServiceError(
            f"The connected eBay account is for the {account.environment} environment but Jobsite now uses "
            f"{settings.EBAY_ENV}; reconnect it with PUT /api/ebay/account.", field="account", status=400,
        )
    return account


def user_client(user, **kwargs):
    account = account_for(user)
    client = EbayClient(marketplace_id=kwargs.pop("marketplace_id", None) or account.marketplace_id, **kwargs)
    client.user_tokens = AccountTokens(account, client.refresh_user_token)
    return client


# -- category fetches (seed 000) ---------------------------------------------------------------------------
def collect_leaves(node):
    """(category_id, category_name) of every leaf under a CategoryTreeNode, depth first in eBay's order.
    A leaf is marked with leafCategoryTreeNode: true; eBay omits the field on other nodes."""
    leaves, stack = [], [node]
    while stack:
        current = stack.pop()
        children = current.get("childCategoryTreeNodes") or []
        if current.get("leafCategoryTreeNode") or not children:
            category = current.get("category") or {}
            if category.get("categoryId") and current.get("categoryTreeNodeLevel", 1) > 0:
                leaves.append((str(category["categoryId"]), category.get("categoryName") or ""))
            continue
        stack.extend(reversed(children))
    return leaves


def seed_status(job):
    """The seed's status vocabulary: queued / processing / completed / failed (and cancelled)."""
    if job.status == JobStatus.SUCCEEDED:
        return "completed"
    if job.status == JobStatus.FAILED:
        return "failed"
    if job.status == JobStatus.CANCELLED:
        return "cancelled"
    if job.status == JobStatus.RUNNING or job.started_at:
        return "processing"
    return "queued"


def start_category_fetch(owner, marketplace_id=None, parent_category_id=None, max_categories=None, force=False):
    """Resolve the tree, read the (sub)tree, queue its leaf categories and submit the job. eBay is called
    here, in the request, so an unknown marketplace or parent category answers 400 at once."""
    marketplace_id = marketplace_id or settings.EBAY_MARKETPLACE_ID
    parent_category_id = str(parent_category_id) if parent_category_id else ""
    with EbayClient(marketplace_id=marketplace_id) as client:
        try:
            tree = client.get_default_category_tree_id(marketplace_id)
        except BadRequest as exc:
            raise ServiceError(f"eBay does not know marketplace {marketplace_id!r}: {exc.message}",
                               field="marketplace_id")
        except EbayError as exc:
            raise upstream_error(exc, "resolving the category tree") from exc
        tree_id, version = str(tree["categoryTreeId"]), str(tree.get("categoryTreeVersion") or "")
        try:
            if parent_category_id:
                node = client.get_category_subtree(tree_id, parent_category_id)["categorySubtreeNode"]
            else:
                node = client.get_category_tree(tree_id)["rootCategoryNode"]
        except (BadRequest, NotFound) as exc:
            raise ServiceError(
                f"Category {parent_category_id} is not in the {marketplace_id} category tree {tree_id} "
                f"(eBay answered {exc.describe()}). Use a category id from that tree, e.g. 26395 for "
                "Health & Beauty on EBAY_US.", field="parent_category_id")
        except EbayError as exc:
            raise upstream_error(exc, "reading the category tree") from exc
    leaves = collect_leaves(node)
    if max_categories:
        leaves = leaves[:max_categories]
    parent_name = (node.get("category") or {}).get("categoryName", "") if parent_category_id else ""
    return _create_fetch(owner, marketplace_id, tree_id, version, parent_category_id, parent_name,
                         leaves, max_categories=max_categories, force=force)


def _create_fetch(owner, marketplace_id, tree_id, version, parent_id, parent_name, leaves, *, max_categories=None,
                  force=False, retry_of=None):
    params = {"marketplace_id": marketplace_id, "category_tree_id": tree_id,
              "parent_category_id": parent_id or None, "max_categories": max_categories, "force": force,
              "total_categories": len(leaves)}
    with transaction.atomic():
        # The job is handed to a worker when this transaction commits, so its rows exist by then.
        job = submit(CATEGORY_FETCH_KIND, params, owner=owner)
        fetch = CategoryFetch.objects.create(
            job=job, owner=owner if owner is not None and owner.is_authenticated else None,
            marketplace_id=marketplace_id, category_tree_id=tree_id, category_tree_version=version,
            parent_category_id=parent_id or "", parent_category_name=parent_name or "",
            max_categories=max_categories, force=force, total_categories=len(leaves), retry_of=retry_of,
        )
        CategoryFetchItem.objects.bulk_create(
            [CategoryFetchItem(fetch=fetch, position=i, category_id=cid, category_name=name[:200])
             for i, (cid, name) in enumerate(leaves)],
            batch_size=1000,
        )
        Job.objects.filter(id=job.id).update(progress_total=len(leaves))
    log.info("category fetch %s queued: %s categories of %s tree %s%s", job.id, len(leaves), marketplace_id,
             tree_id, f" under {parent_name} ({parent_id})" if parent_id else "")
    return fetch


def retry_failed_categories(fetch, owner):
    """A new fetch job for only the categories that failed in `fetch` (fetched regardless of freshness)."""
    if fetch.job.is_active:
        raise ServiceError("This fetch is still running; wait until it finishes (or cancel it) before "
                           "retrying its failed categories.", status=409)
    failed = list(fetch.items.filter(status=CategoryFetchItem.Status.FAILED).order_by("position")
                  .values_list("category_id", "category_name"))
    if not failed:
        raise ServiceError("This fetch has no failed categories to retry.", status=409)
    return _create_fetch(owner, fetch.marketplace_id, fetch.category_tree_id, fetch.category_tree_version,
                         fetch.parent_category_id, fetch.parent_category_name, failed, force=True,
                         retry_of=fetch)


def fetches_for(user):
    fetches = CategoryFetch.objects.select_related("job")
    return fetches if user.is_staff else fetches.filter(owner=user)


def aspects_for(category_id, marketplace_id=None):
    """The stored aspects of a leaf category (newest tree version), or None when never fetched."""
    marketplace_id = marketplace_id or settings.EBAY_MARKETPLACE_ID
    return (CategoryAspects.objects.filter(marketplace_id=marketplace_id, category_id=str(category_id))
            .order_by("-fetched_at").first())


def _fresh_ids(fetch, items):
    if fetch.force:
        return set()
    cutoff = timezone.now() - timedelta(hours=settings.EBAY_CATEGORY_FRESHNESS_HOURS)
    return set(CategoryAspects.objects.filter(
        category_tree_id=fetch.category_tree_id, category_id__in=[i.category_id for i in items],
        fetched_at__gte=cutoff,
    ).values_list("category_id", flat=True))


class _Counts:
    def __init__(self, fetch):
        self.processed, self.success, self.failed, self.skipped = (
            fetch.processed, fetch.success, fetch.failed, fetch.skipped)


def run_category_fetch(ctx):
    """The job: fetch each pending category's aspects at the configured spacing, record failures per
    category, yield at the end of each time slice, pause while the quota is spent."""
    fetch = CategoryFetch.objects.select_related("job").get(job_id=ctx.job_id)
    # The slice budget is read at run time (not only the kind's slice_seconds, fixed at start-up), so a
    # setting change reaches running workers' next slice and tests can shorten it.
    deadline = time.monotonic() + settings.EBAY_CATEGORY_FETCH_SLICE_SECONDS
    counts = _Counts(fetch)
    total = fetch.total_categories
    started_at = counts.processed
    ctx.progress(counts.processed, total=total, succeeded=counts.success, failed=counts.failed,
                 message=_fetch_message(counts, total))
    if counts.processed:
        ctx.event(f"Resuming: {counts.processed} of {total} categories already done")
    consecutive_transient = handled = 0
    with EbayClient(marketplace_id=fetch.marketplace_id) as client:
        while True:
            items = list(fetch.items.filter(status=CategoryFetchItem.Status.PENDING).order_by("position")[:200])
            if not items:
                break
            fresh = _fresh_ids(fetch, items)
            for item in items:
                # At least one category per slice, so that a tiny budget still makes progress.
                if handled and (ctx.out_of_time() or time.monotonic() >= deadline):
                    raise YieldSlice(after=0, reason=f"Time slice used ({counts.processed - started_at} "
                                                     f"categories this slice, {total - counts.processed} to go)")
                handled += 1
                if item.category_id in fresh:
                    _record_item(ctx, fetch, item, counts, CategoryFetchItem.Status.SKIPPED)
                else:
                    try:
                        data = client.get_item_aspects_for_category(fetch.category_tree_id, item.category_id)
                    except QuotaExceeded as exc:
                        ctx.event("eBay's call quota is spent (HTTP 429, error 2001); pausing until it resets",
                                  retry_after_seconds=exc.retry_after)
                        ctx.progress(message=f"Paused: eBay call quota spent, resumes in about "
                                             f"{exc.retry_after:.0f} s ({counts.processed} of {total} done)")
                        raise YieldSlice(after=exc.retry_after, reason="eBay call quota spent (HTTP 429)")
                    except AuthError as exc:
                        raise PermanentError(f"eBay refused the application credentials: {exc.describe()}. "
                                             "Check EBAY_CLIENT_ID / EBAY_CLIENT_SECRET, then retry the job.")
                    except EbayError as exc:
                        if not exc.transient:
                            _record_item(ctx, fetch, item, counts, CategoryFetchItem.Status.FAILED, error=exc.describe())
                            consecutive_transient = 0
                        else:
                            consecutive_transient += 1
                            _record_transient(ctx, fetch, item, counts, exc)
                            if consecutive_transient >= MAX_CONSECUTIVE_TRANSIENT:
                                raise RetryLater(f"eBay failed {consecutive_transient} calls in a row "
                                                 f"(last: {exc.describe()})")
                        continue
                    consecutive_transient = 0
                    _record_item(ctx, fetch, item, counts, CategoryFetchItem.Status.FETCHED,
                                 aspects=data.get("aspects") or [])
                ctx.progress(counts.processed, succeeded=counts.success, failed=counts.failed,
                             message=_fetch_message(counts, total))
            # Categories with a transient error moved to the back; the loop picks them up again.
    result = {"total_categories": total, "processed": counts.processed, "success": counts.success,
              "failed": counts.failed, "skipped": counts.skipped}
    ctx.event(f"Done: {counts.success} of {total} categories stored ({counts.skipped} already fresh), "
              f"{counts.failed} failed", **result)
    # The generic result endpoint carries the seed's final status too (errors: the first 1,000).
    errors = list(fetch.items.filter(status=CategoryFetchItem.Status.FAILED).order_by("position")
                  .values("category_id", "category_name", "error")[:1000])
    return {**result, "parent_category": fetch.parent_category or None, "marketplace_id": fetch.marketplace_id,
            "category_tree_id": fetch.category_tree_id, "errors": errors}


def _fetch_message(counts, total):
    return (f"{counts.processed} of {total} categories processed: {counts.success} ok"
            f"{f' ({counts.skipped} already fresh)' if counts.skipped else ''}, {counts.failed} failed")


def _checkpoint(fetch, item, counts):
    return {"last_position": item.position, "last_category_id": item.category_id,
            "total_categories": fetch.total_categories, "processed": counts.processed, "success": counts.success,
            "failed": counts.failed, "skipped": counts.skipped, "parent_category": fetch.parent_category or None}


def _record_item(ctx, fetch, item, counts, status, aspects=None, error=""):
    now = timezone.now()
    ok = status != CategoryFetchItem.Status.FAILED
    with transaction.atomic():
        if status == CategoryFetchItem.Status.FETCHED:
            CategoryAspects.objects.update_or_create(
                category_tree_id=fetch.category_tree_id, category_id=item.category_id,
                defaults={"marketplace_id": fetch.marketplace_id, "category_tree_version": fetch.category_tree_version,
                          "category_name": item.category_name, "aspects": aspects, "fetched_at": now},
            )
        attempts = item.attempts + (0 if status == CategoryFetchItem.Status.SKIPPED else 1)
        changed = CategoryFetchItem.objects.filter(pk=item.pk, status=CategoryFetchItem.Status.PENDING).update(
            status=status, attempts=attempts, error=error[:500], updated_at=now)
        if not changed:
            return
        CategoryFetch.objects.filter(pk=fetch.pk).update(
            processed=F("processed") + 1,
            success=F("success") + (1 if ok else 0),
            failed=F("failed") + (0 if ok else 1),
            skipped=F("skipped") + (1 if status == CategoryFetchItem.Status.SKIPPED else 0),
        )
        counts.processed += 1
        counts.success += 1 if ok else 0
        counts.failed += 0 if ok else 1
        counts.skipped += 1 if status == CategoryFetchItem.Status.SKIPPED else 0
        # Also proves this worker still holds the job: if not, everything above rolls back. The counters
        # make the generic job detail (/api/jobs/{id}/) show the seed's numbers too.
        ctx.save_checkpoint(_checkpoint(fetch, item, counts))


def _record_transient(ctx, fetch, item, counts, exc):
    """A 5xx or timeout: the category goes to the back of the queue, until it has used its attempts."""
    attempts = item.attempts + 1
    if attempts >= settings.EBAY_CATEGORY_ITEM_MAX_ATTEMPTS:
        item.attempts = attempts - 1
        _record_item(ctx, fetch, item, counts, CategoryFetchItem.Status.FAILED,
                     error=f"{exc.describe()} (after {attempts} attempts)")
        return
    with transaction.atomic():
        last = fetch.items.order_by("-position").values_list("position", flat=True).first() or 0
        CategoryFetchItem.objects.filter(pk=item.pk).update(
            attempts=attempts, position=last + 1, error=exc.describe()[:500], updated_at=timezone.now())
        ctx.save_checkpoint(_checkpoint(fetch, item, counts))
    ctx.event(f"Category {item.category_id} ({item.category_name}): {exc.describe()}; retried later "
              f"(attempt {attempts} of {settings.EBAY_CATEGORY_ITEM_MAX_ATTEMPTS})")


def fetch_status(fetch, errors_limit=1000):
    """Every field of the seed's status, plus percentage, rate and ETA."""
    job = fetch.job
    now = timezone.now()
    elapsed = ((job.finished_at or now) - job.started_at).total_seconds() if job.started_at else None
    rate = fetch.processed / elapsed if elapsed and fetch.processed else None
    remaining = max(0, fetch.total_categories - fetch.processed)
    eta = round(remaining / rate, 1) if rate and job.is_active else (0 if not job.is_active else None)
    errors = list(fetch.items.filter(status=CategoryFetchItem.Status.FAILED).order_by("position")
                  .values("category_id", "category_name", "error")[:errors_limit])
    return {
        "job_id": str(job.id),
        "total_categories": fetch.total_categories,
        "processed": fetch.processed,
        "success": fetch.success,
        "failed": fetch.failed,
        "skipped": fetch.skipped,
        "status": seed_status(job),
        "job_status": job.status,
        "created_at": fetch.created_at,
        "updated_at": job.updated_at,
        "finished_at": job.finished_at,
        "parent_category": fetch.parent_category or None,
        "marketplace_id": fetch.marketplace_id,
        "category_tree_id": fetch.category_tree_id,
        "category_tree_version": fetch.category_tree_version,
        "errors": errors,
        "error_count": fetch.failed,
        "percentage": 100 if job.status == JobStatus.SUCCEEDED else (
            int(fetch.processed * 100 / fetch.total_categories) if fetch.total_categories else 0),
        "rate_per_second": round(rate, 3) if rate else None,
        "elapsed_seconds": round(elapsed, 1) if elapsed is not None else None,
        "eta_seconds": eta,
        "message": job.message,
        "error": job.error,
        "next_attempt_at": job.run_after if job.status == JobStatus.WAITING else None,
        "retry_of": str(fetch.retry_of_id) if fetch.retry_of_id else None,
    }


# -- the promotion queue (seed 001) ------------------------------------------------------------------------
@dataclass
class Queued:
    promotion: Promotion
    created: bool


def _manual_running_campaigns(campaigns):
    """Campaigns a listing can be added to by id: running, cost-per-sale, without selection rules (rules-
    based campaigns pick their own listings)."""
    found = []
    for campaign in campaigns:
        if campaign.get("campaignStatus") != "RUNNING":
            continue
        criterion = campaign.get("campaignCriterion") or {}
        if criterion.get("selectionRules") or criterion.get("autoSelectFutureInventory"):
            continue
        if campaign.get("campaignTargetingType") == "SMART":
            continue
        funding = (campaign.get("fundingStrategy") or {}).get("fundingModel", "COST_PER_SALE")
        if funding != "COST_PER_SALE":
            continue
        found.append(campaign)
    return found


def default_campaign(user, client=None):
    """The user's default campaign, else their single running manual campaign (from getCampaigns)."""
    account = account_for(user)
    if account.default_campaign_id:
        return account.default_campaign_id
    own = client is None
    client = client or user_client(user)
    try:
        campaigns = client.get_campaigns(campaign_status="RUNNING", limit=500).get("campaigns") or []
    except EbayError as exc:
        raise upstream_error(exc, "looking up your campaigns") from exc
    finally:
        if own:
            client.close()
    manual = _manual_running_campaigns(campaigns)
    if len(manual) == 1:
        return str(manual[0]["campaignId"])
    if not manual:
        raise ServiceError("No campaign_id was given and you have no running manual (cost-per-sale) campaign. "
                           "Create one on eBay, or pass campaign_id.", field="campaign_id")
    names = ", ".join(f"{c.get('campaignName')} ({c['campaignId']})" for c in manual)
    raise ServiceError(f"No campaign_id was given and you have {len(manual)} running manual campaigns: {names}. "
                       "Pass campaign_id, or set a default with PUT /api/ebay/account.", field="campaign_id")


def queue_promotions(user, entries, source="api"):
    """Queue one promotion job per entry ({listing_id, ad_rate, campaign_id?}). The first attempt runs
    EBAY_PROMOTION_FIRST_DELAY_SECONDS later (eBay needs time to sync a new listing); a batch staggers
    its first attempts by EBAY_PROMOTION_STAGGER_SECONDS. A listing with a pending promotion is not queued
    again: its existing promotion comes back with created=False."""
    account_for(user)
    campaign = None
    if any(not e.get("campaign_id") for e in entries):
        campaign = default_campaign(user)
    now = timezone.now()
    batch_id = uuid.uuid4() if len(entries) > 1 else None
    queued, new = [], 0
    for entry in entries:
        listing_id = str(entry["listing_id"])
        existing = Promotion.objects.filter(owner=user, listing_id=listing_id,
                                            status=Promotion.Status.PENDING).first()
        if existing:
            queued.append(Queued(existing, False))
            continue
        run_after = now + timedelta(seconds=settings.EBAY_PROMOTION_FIRST_DELAY_SECONDS
                                    + new * settings.EBAY_PROMOTION_STAGGER_SECONDS)
        ad_rate = Decimal(str(entry["ad_rate"])).quantize(Decimal("0.1"))
        campaign_id = str(entry.get("campaign_id") or campaign)
        try:
            with transaction.atomic():
                job = submit(PROMOTION_KIND, {"listing_id": listing_id, "ad_rate": str(ad_rate),
                                              "campaign_id": campaign_id}, owner=user, run_after=run_after)
                promotion = Promotion.objects.create(
                    owner=user, job=job, batch_id=batch_id, source=source, listing_id=listing_id,
                    campaign_id=campaign_id, ad_rate=ad_rate,
                )
        except IntegrityError:
            # Another request queued the same listing a moment ago: theirs stands (our job rolled back).
            existing = Promotion.objects.filter(owner=user, listing_id=listing_id,
                                                status=Promotion.Status.PENDING).first()
            if existing is None:
                raise
            queued.append(Queued(existing, False))
            continue
        new += 1
        queued.append(Queued(promotion, True))
        worker_log.info("[promotion-queue] Queued listing %s at %s%% in campaign %s: job %s, first attempt at "
                        "%s UTC", listing_id, ad_rate, campaign_id, job.id, f"{run_after:%H:%M:%S}")
    return queued


def promotions_for(user):
    promotions = Promotion.objects.select_related("job", "owner")
    return promotions if user.is_staff else promotions.filter(owner=user)


def _find_ad(client, campaign_id, listing_id):
    ads = client.get_ads(campaign_id, listing_ids=[listing_id]).get("ads") or []
    for ad in ads:
        if str(ad.get("listingId")) == str(listing_id):
            return ad
    return None


def run_promotion(ctx):
    """One attempt at createAdByListingId, classified by eBay's errorId (see ebay-specs/README.md)."""
    promotion = Promotion.objects.select_related("owner").get(job_id=ctx.job_id)
    label = f"Job {ctx.job_id} (listing {promotion.listing_id})"
    if promotion.status == Promotion.Status.PROMOTED:
        return {"listing_id": promotion.listing_id, "ad_id": promotion.ad_id, "note": "already promoted"}
    if promotion.status != Promotion.Status.PENDING:
        _reopen(promotion)  # the job was retried (API or admin) after it failed or was cancelled
    worker_log.info("[promotion-worker] %s: attempt %s of %s started", label, ctx.attempt, ctx.max_attempts)
    counts = _queue_counts()
    worker_log.info("[promotion-worker] Queue stats: %s", counts)
    ctx.event(f"Attempt {ctx.attempt} of {ctx.max_attempts}: listing {promotion.listing_id} at "
              f"{promotion.ad_rate}% in campaign {promotion.campaign_id}", queue_stats=counts)
    Promotion.objects.filter(pk=promotion.pk).update(attempts=ctx.attempt, updated_at=timezone.now())
    final = ctx.attempt >= ctx.max_attempts
    try:
        client = user_client(promotion.owner)
    except ServiceError as exc:
        return _fail(ctx, promotion, label, exc.message)
    with client:
        try:
            if promotion.create_sent_at:
                # The previous attempt sent createAd and died before recording eBay's answer.
                ad = _find_ad(client, promotion.campaign_id, promotion.listing_id)
                if ad:
                    ctx.event("The previous attempt's ad was created before it stopped; recorded it",
                              ad_id=ad.get("adId"))
                    return _succeed(ctx, promotion, label, ad.get("adId") or "", already=False)
            Promotion.objects.filter(pk=promotion.pk).update(create_sent_at=timezone.now())
            try:
                ad_id = client.create_ad_by_listing_id(promotion.campaign_id, promotion.listing_id,
                                                       promotion.ad_rate)
            except EbayError as exc:
                if exc.status is not None:  # eBay answered: nothing is in flight any more
                    Promotion.objects.filter(pk=promotion.pk).update(create_sent_at=None)
                raise
            if not ad_id:
                ad = _find_ad(client, promotion.campaign_id, promotion.listing_id)
                if not ad:
                    raise TransientError("eBay answered 201 without the ad's Location and the ad is not listed")
                ad_id = ad.get("adId") or ""
            return _succeed(ctx, promotion, label, ad_id, already=False)
        except AdAlreadyExists:
            ad = _find_ad(client, promotion.campaign_id, promotion.listing_id)
            ctx.event("eBay says an ad for this listing already exists (35036): counted as success",
                      ad_id=(ad or {}).get("adId"))
            return _succeed(ctx, promotion, label, (ad or {}).get("adId", ""), already=True)
        except QuotaExceeded as exc:
            reason = f"eBay's call quota is spent (HTTP 429); paused {exc.retry_after:.0f} s until it resets"
            _note(promotion, reason)
            ctx.event(reason)
            # A yield does not use up one of the 5 attempts: the quota is not the listing's fault.
            raise YieldSlice(after=exc.retry_after, reason=reason)
        except ListingNotSynced as exc:
            return _retry(ctx, promotion, label, f"Listing not synced yet ({exc.describe()})", final)
        except (CampaignNotFound, InvalidBid, NotEligible) as exc:
            return _fail(ctx, promotion, label, _permanent_reason(exc, promotion))
        except AuthError as exc:
            return _fail(ctx, promotion, label, f"eBay refused the account's credentials after a token refresh "
                                                f"({exc.describe()}); reconnect the eBay account.")
        except EbayError as exc:
            if exc.transient:
                return _retry(ctx, promotion, label, exc.describe(), final)
            return _fail(ctx, promotion, label, f"eBay refused the ad: {exc.describe()}")


def _reopen(promotion):
    try:
        with transaction.atomic():
            Promotion.objects.filter(pk=promotion.pk).update(status=Promotion.Status.PENDING,
                                                             updated_at=timezone.now())
    except IntegrityError:
        other = Promotion.objects.filter(owner_id=promotion.owner_id, listing_id=promotion.listing_id,
                                         status=Promotion.Status.PENDING).first()
        raise PermanentError(f"Listing {promotion.listing_id} has another pending promotion"
                             f"{f' (job {other.job_id})' if other else ''}; this one is not retried.")
    promotion.status = Promotion.Status.PENDING


def _permanent_reason(exc, promotion):
    if isinstance(exc, CampaignNotFound):
        return (f"Campaign {promotion.campaign_id} was not found or has ended ({exc.describe()}); "
                "choose a running campaign.")
    if isinstance(exc, InvalidBid):
        return f"Ad rate {promotion.ad_rate}% is not accepted by the campaign ({exc.describe()})."
    return f"Listing {promotion.listing_id} cannot be promoted: {exc.describe()}"


def _note(promotion, error):
    Promotion.objects.filter(pk=promotion.pk).update(last_error=error[:2000], updated_at=timezone.now())


def _succeed(ctx, promotion, label, ad_id, already):
    now = timezone.now()
    Promotion.objects.filter(pk=promotion.pk, status=Promotion.Status.PENDING).update(
        status=Promotion.Status.PROMOTED, ad_id=ad_id or "", already_existed=already, promoted_at=now,
        create_sent_at=None, updated_at=now)
    worker_log.info("[promotion-worker] ✓ %s succeeded: ad %s%s", label, ad_id or "(id unknown)",
                    " (already existed)" if already else "")
    ctx.event(f"Promoted: ad {ad_id or '(id unknown)'}" + (" (already existed)" if already else ""),
              ad_id=ad_id, already_existed=already)
    _batch_summary(ctx, promotion)
    return {"listing_id": promotion.listing_id, "campaign_id": promotion.campaign_id, "ad_id": ad_id,
            "already_existed": already, "attempts": ctx.attempt}


def _retry(ctx, promotion, label, reason, final):
    _note(promotion, reason)
    if final:
        error = f"{reason} (gave up after {ctx.attempt} attempts)"
        Promotion.objects.filter(pk=promotion.pk, status=Promotion.Status.PENDING).update(
            status=Promotion.Status.FAILED, last_error=error, updated_at=timezone.now())
        worker_log.warning("[promotion-worker] %s failed after %s attempts: %s", label, ctx.attempt, reason)
        _batch_summary(ctx, promotion)
    else:
        worker_log.info("[promotion-worker] ✗ %s failed: %s (retrying)", label, reason)
    raise RetryLater(reason)


def _fail(ctx, promotion, label, reason):
    Promotion.objects.filter(pk=promotion.pk, status=Promotion.Status.PENDING).update(
        status=Promotion.Status.FAILED, last_error=reason[:2000], create_sent_at=None, updated_at=timezone.now())
    worker_log.warning("[promotion-worker] ✗ %s failed permanently: %s", label, reason)
    _batch_summary(ctx, promotion)
    raise PermanentError(reason)


def _batch_summary(ctx, promotion):
    if not promotion.batch_id:
        return
    batch = Promotion.objects.filter(batch_id=promotion.batch_id)
    if batch.filter(status=Promotion.Status.PENDING).exists():
        return
    succeeded = batch.filter(status=Promotion.Status.PROMOTED).count()
    failed = batch.exclude(status=Promotion.Status.PROMOTED).count()
    line = f"Batch {promotion.batch_id} complete: {succeeded} succeeded, 0 retrying, {failed} failed"
    worker_log.info("[promotion-worker] %s", line)
    ctx.event(line, batch_id=str(promotion.batch_id), succeeded=succeeded, failed=failed)


def _queue_counts(promotions=None):
    promotions = Promotion.objects.all() if promotions is None else promotions
    now = timezone.now()
    pending = promotions.filter(status=Promotion.Status.PENDING)
    due = Q(job__status__in=[JobStatus.QUEUED, JobStatus.RUNNING]) | Q(
        job__status=JobStatus.WAITING, job__run_after__lte=now)
    total = pending.count()
    ready = pending.filter(due).count()
    return {"total": total, "ready": ready, "pending": total - ready}


def promotion_stats(user):
    """The seed's stats (total, ready, pending) and its metrics wish: outcomes in the last 24 h."""
    promotions = promotions_for(user)
    body = _queue_counts(promotions)
    since = timezone.now() - timedelta(hours=24)
    finished = promotions.filter(updated_at__gte=since,
                                 status__in=[Promotion.Status.PROMOTED, Promotion.Status.FAILED])
    succeeded = finished.filter(status=Promotion.Status.PROMOTED).count()
    failed = finished.filter(status=Promotion.Status.FAILED).count()
    average = finished.aggregate(avg=Avg("attempts"))["avg"]
    body.update({
        "succeeded_last_24h": succeeded,
        "failed_last_24h": failed,
        "already_existed_last_24h": finished.filter(already_existed=True).count(),
        "success_rate_last_24h": round(succeeded / (succeeded + failed), 3) if succeeded + failed else None,
        "average_attempts_last_24h": round(float(average), 2) if average is not None else None,
    })
    return body


def on_job_finished(job):
    """Keep Promotion in step when the engine ends a job the handler did not settle (cancel, a lost worker
    on the last attempt)."""
    if job.kind != PROMOTION_KIND:
        return
    status = {JobStatus.CANCELLED: Promotion.Status.CANCELLED, JobStatus.FAILED: Promotion.Status.FAILED}.get(job.status)
    if status is None:
        return
    reason = job.error or job.message or status
    updated = Promotion.objects.filter(job_id=job.id, status=Promotion.Status.PENDING).update(
        status=status, last_error=reason[:2000], updated_at=timezone.now())
    if updated:
        worker_log.warning("[promotion-worker] Job %s %s: %s", job.id, status, reason)


def requeue_promotion(promotion, source="admin"):
    """Queue a failed or cancelled promotion again as a new job (the old one stays as history)."""
    if promotion.status == Promotion.Status.PENDING:
        raise ServiceError(f"Listing {promotion.listing_id} already has a pending promotion.", status=409)
    if promotion.status == Promotion.Status.PROMOTED:
        raise ServiceError(f"Listing {promotion.listing_id} is already promoted (ad {promotion.ad_id}).", status=409)
    return queue_promotions(promotion.owner, [{"listing_id": promotion.listing_id, "ad_rate": promotion.ad_rate,
                                               "campaign_id": promotion.campaign_id}], source=source)[0]


# -- publishOffer with auto-promote ------------------------------------------------------------------------
def _merchant_flag(merchant_data, snake, camel):
    if snake in merchant_data:
        return merchant_data[snake]
    return merchant_data.get(camel)


def publish_offer(user, offer_id, merchant_data=None):
    """Publish an offer (Inventory publishOffer). When the draft's merchant data has auto_promote true,
    queue the listing's promotion at auto_promote_ad_rate. Returns {offer_id, listing_id, warnings,
    promotion} where promotion is the Queued result or None."""
    merchant_data = merchant_data or {}
    auto = _merchant_flag(merchant_data, "auto_promote", "autoPromote") is True
    rate = _merchant_flag(merchant_data, "auto_promote_ad_rate", "autoPromoteAdRate")
    if auto:
        try:
            rate = Decimal(str(rate))
        except Exception:
            rate = None
        if rate is None or not rate.is_finite() or not Decimal("2.0") <= rate <= Decimal("100.0"):
            raise ServiceError("merchant_data.auto_promote_ad_rate must be a number from 2.0 to 100.0 when "
                               "auto_promote is true.", field="merchant_data")
    with user_client(user) as client:
        try:
            body = client.publish_offer(offer_id)
        except NotFound as exc:
            raise ServiceError(f"eBay has no offer {offer_id}: {exc.describe()}", field="offer_id", status=404)
        except BadRequest as exc:
            raise ServiceError(f"eBay refused to publish offer {offer_id}: {exc.describe()}", field="offer_id")
        except EbayError as exc:
            raise upstream_error(exc, f"publishing offer {offer_id}") from exc
    listing_id = str(body.get("listingId") or "")
    promotion = None
    if auto and listing_id:
        promotion = queue_promotions(user, [{"listing_id": listing_id, "ad_rate": rate}], source="auto_promote")[0]
    log.info("offer %s published as listing %s%s", offer_id, listing_id or "(none)",
             " and queued for promotion" if promotion else "")
    return {"offer_id": str(offer_id), "listing_id": listing_id or None, "warnings": body.get("warnings") or [],
            "promotion": promotion}
