"""One httpx client for eBay's OAuth, Taxonomy, Marketing and Inventory APIs.

Every error eBay answers is turned into a typed exception (see `error_from_response`), so callers decide
what to do by type: retry later, pause for the quota, or give up with a readable reason.
"""

import base64
import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.core.cache import cache

log = logging.getLogger("ebay.client")
# httpx logs every request at INFO: thousands of lines per category fetch. Failures reach the job's
# history and our own log lines instead.
logging.getLogger("httpx").setLevel(logging.WARNING)

APP_SCOPE = "https://api.ebay.com/oauth/api_scope"
MARKETING_SCOPE = "https://api.ebay.com/oauth/api_scope/sell.marketing"
INVENTORY_SCOPE = "https://api.ebay.com/oauth/api_scope/sell.inventory"
USER_SCOPES = (MARKETING_SCOPE, INVENTORY_SCOPE)

TOKEN_PATH = "/identity/v1/oauth2/token"
TAXONOMY = "/commerce/taxonomy/v1"
MARKETING = "/sell/marketing/v1"
INVENTORY = "/sell/inventory/v1"

# A cached token is dropped this long before eBay says it expires, so no call starts with a dying token.
TOKEN_EXPIRY_MARGIN_SECONDS = 300
FAKE_CLIENT_ID = "jobsite-fake-client"
FAKE_CLIENT_SECRET = "jobsite-fake-secret"


# -- typed errors ------------------------------------------------------------------------------------------
class EbayError(Exception):
    """eBay refused a call. `status` is the HTTP status (None for network errors), `error_id` the first
    errorId of the body, `errors` the whole list."""

    transient = False

    def __init__(self, message, *, status=None, error_id=None, errors=None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_id = error_id
        self.errors = errors or []

    def describe(self):
        """Short reason for job errors and per-category error columns, e.g. "HTTP 404: ..."."""
        prefix = f"HTTP {self.status}" if self.status else self.__class__.__name__
        if self.error_id:
            prefix += f" (eBay error {self.error_id})"
        return f"{prefix}: {self.message}" if self.message else prefix


class TransientError(EbayError):
    """Network timeout, connection trouble, 5xx, an internal eBay error (35001/35002, 62000): try again."""

    transient = True


class QuotaExceeded(EbayError):
    """HTTP 429 / errorId 2001: the app's call quota is spent. Pause until it resets; never hammer."""

    def __init__(self, message, *, retry_after, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class AuthError(EbayError):
    """401 after one token refresh, or a token grant refused: the credentials are wrong or revoked."""


class NotFound(EbayError):
    pass


class BadRequest(EbayError):
    """A 4xx that no retry fixes (unless a subclass says otherwise)."""


class CategoryNotInTree(BadRequest):
    """62004/62005/62008: the tree or category id does not exist (in this tree)."""


class NotLeafCategory(BadRequest):
    """62009: aspects exist only for leaf categories."""


class AdAlreadyExists(BadRequest):
    """35036: an ad for the listing exists already. For a promotion that is success."""


class ListingNotSynced(BadRequest):
    """35048: "listing invalid or has ended" - what a freshly published listing answers until eBay's
    Promoted Listings side has seen it. Retry with backoff; attempts are capped because an ended listing
    answers the same."""

    transient = True


class CampaignNotFound(BadRequest):
    """35045/35046 (and 35035, campaign ended)."""


class InvalidBid(BadRequest):
    """35007: bidPercentage outside what the campaign accepts."""


class NotEligible(BadRequest):
    """The listing or the seller cannot be promoted (35052, 35054, 35057-35059, 35075, 35077, 35078)."""


ERROR_TYPES = {
    2001: QuotaExceeded,
    35001: TransientError, 35002: TransientError, 62000: TransientError,
    35061: TransientError,  # campaign being synced: "wait a few minutes and try again"
    35036: AdAlreadyExists,
    35048: ListingNotSynced,
    35045: CampaignNotFound, 35046: CampaignNotFound, 35035: CampaignNotFound,
    35007: InvalidBid,
    35052: NotEligible, 35054: NotEligible, 35057: NotEligible, 35058: NotEligible, 35059: NotEligible,
    35075: NotEligible, 35077: NotEligible, 35078: NotEligible,
    62004: CategoryNotInTree, 62005: CategoryNotInTree, 62008: CategoryNotInTree,
    62009: NotLeafCategory,
    1001: AuthError, 1100: AuthError,
}


def _retry_after(response):
    value = response.headers.get("Retry-After")
    if value:
        try:
            return max(1.0, float(value))
        except ValueError:
            pass
    return float(settings.EBAY_QUOTA_PAUSE_SECONDS)


def error_from_response(response):
    """The typed exception for an eBay error response (4xx/5xx)."""
    status = response.status_code
    errors = []
    try:
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("errors"), list):
            errors = [e for e in body["errors"] if isinstance(e, dict)]
        elif isinstance(body, dict) and body.get("error"):  # OAuth answers {"error", "error_description"}
            errors = [{"message": f"{body['error']}: {body.get('error_description', '')}".strip(": ")}]
    except ValueError:
        pass
    first = errors[0] if errors else {}
    error_id = first.get("errorId")
    try:
        error_id = int(error_id) if error_id is not None else None
    except (TypeError, ValueError):
        error_id = None
    message = first.get("longMessage") or first.get("message") or response.reason_phrase or ""
    kwargs = dict(status=status, error_id=error_id, errors=errors)
    kind = ERROR_TYPES.get(error_id)
    if status == 429 or kind is QuotaExceeded:
        return QuotaExceeded(message or "call quota exceeded", retry_after=_retry_after(response), **kwargs)
    if kind is not None:
        return kind(message, **kwargs)
    if status == 401:
        return AuthError(message or "invalid or expired access token", **kwargs)
    if status == 404:
        return NotFound(message or "not found", **kwargs)
    if status >= 500 or status == 408:
        return TransientError(message, **kwargs)
    return BadRequest(message, **kwargs)


# -- rate limiting -----------------------------------------------------------------------------------------
class Spacer:
    """Keeps at least `interval` seconds between the starts of calls. One per job: every call of the job
    goes through it, whatever the endpoint."""

    def __init__(self, interval=None, clock=time.monotonic, sleep=time.sleep):
        self.interval = settings.EBAY_CALL_SPACING_SECONDS if interval is None else interval
        self._clock, self._sleep = clock, sleep
        self._last = None
        self._lock = threading.Lock()

    def wait(self):
        with self._lock:
            now = self._clock()
            if self._last is not None:
                delay = self._last + self.interval - now
                if delay > 0:
                    self._sleep(delay)
                    now = self._clock()
            self._last = now


# -- tokens ------------------------------------------------------------------------------------------------
@dataclass
class Token:
    access_token: str
    expires_in: float
    refresh_token: str | None = None
    refresh_token_expires_in: float | None = None


class UserTokens:
    """Where a client gets a user's access token and how it refreshes it (services.AccountTokens stores
    them encrypted). `access_token()` returns a valid token; `refresh()` forces a new one."""

    def access_token(self):  # pragma: no cover - interface
        raise NotImplementedError

    def refresh(self):  # pragma: no cover - interface
        raise NotImplementedError


def credentials():
    client_id, secret = settings.EBAY_CLIENT_ID, settings.EBAY_CLIENT_SECRET
    if not client_id and settings.EBAY_ENV == "fake":
        return FAKE_CLIENT_ID, FAKE_CLIENT_SECRET
    if not client_id or not secret:
        raise AuthError(
            f"EBAY_CLIENT_ID and EBAY_CLIENT_SECRET must be set for the {settings.EBAY_ENV} environment "
            "(or leave EBAY_CLIENT_ID unset to use the fake eBay server)."
        )
    return client_id, secret


# -- the client --------------------------------------------------------------------------------------------
class EbayClient:
    """Calls eBay. `user_tokens` is needed for Marketing and Inventory calls (user scopes); Taxonomy uses
    the application token, cached in Django's cache so that all processes share it."""

    def __init__(self, *, base_url=None, marketplace_id=None, spacer=None, timeout=None, user_tokens=None,
                 transport=None):
        self.base_url = (base_url or settings.EBAY_API_BASE_URL).rstrip("/")
        self.marketplace_id = marketplace_id or settings.EBAY_MARKETPLACE_ID
        self.spacer = spacer or Spacer()
        self.user_tokens = user_tokens
        self.http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout or settings.EBAY_HTTP_TIMEOUT,
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": "Jobsite/1.0"},
        )

    def close(self):
        self.http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- OAuth ---------------------------------------------------------------------------------------------
    def _grant(self, data):
        client_id, secret = credentials()
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        response = self._send(
            "POST", TOKEN_PATH, data=data,
            headers={"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"},
        )
        if response.status_code >= 400:
            error = error_from_response(response)
            if isinstance(error, (QuotaExceeded, TransientError)):
                raise error
            raise AuthError(f"eBay refused the token request: {error.message}", status=error.status,
                            error_id=error.error_id, errors=error.errors)
        body = self._json(response)
        if not body.get("access_token"):
            raise TransientError("eBay's token response had no access_token", status=response.status_code)
        return Token(
            access_token=body["access_token"],
            expires_in=float(body.get("expires_in") or 7200),
            refresh_token=body.get("refresh_token"),
            refresh_token_expires_in=body.get("refresh_token_expires_in"),
        )

    def _app_token_cache_key(self):
        client_id, _ = credentials()
        fingerprint = hashlib.sha256(f"{self.base_url}|{client_id}|{APP_SCOPE}".encode()).hexdigest()[:24]
        return f"ebay:app-token:{fingerprint}"

    def app_token(self, force=False):
        """The application token (client-credentials grant), cached across processes until shortly
        before it expires."""
        key = self._app_token_cache_key()
        if not force:
            token = cache.get(key)
            if token:
                return token
        token = self._grant({"grant_type": "client_credentials", "scope": APP_SCOPE})
        ttl = max(1, int(token.expires_in - TOKEN_EXPIRY_MARGIN_SECONDS))
        cache.set(key, token.access_token, timeout=ttl)
        return token.access_token

    def refresh_user_token(self, refresh_token, scopes=USER_SCOPES):
        """Exchange a user's refresh token for an access token."""
        return self._grant({"grant_type": "refresh_token", "refresh_token": refresh_token,
                            "scope": " ".join(scopes)})

    # -- transport -----------------------------------------------------------------------------------------
    def _send(self, method, path, **kwargs):
        self.spacer.wait()
        try:
            return self.http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise TransientError(f"eBay did not answer in time ({exc.__class__.__name__})") from exc
        except httpx.TransportError as exc:
            raise TransientError(f"could not reach eBay at {self.base_url}: {exc.__class__.__name__}: {exc}") from exc

    @staticmethod
    def _json(response):
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError as exc:
            raise TransientError(f"eBay answered HTTP {response.status_code} with a body that is not JSON",
                                 status=response.status_code) from exc

    def _call(self, method, path, *, user=False, params=None, json=None, headers=None):
        """One API call with the right token; a 401 gets one fresh token and one more try."""
        extra = {"X-EBAY-C-MARKETPLACE-ID": self.marketplace_id, **(headers or {})}
        if json is not None:
            extra["Content-Type"] = "application/json"
        for attempt in (1, 2):
            if user:
                if self.user_tokens is None:
                    raise AuthError("this call needs a user's eBay token; connect an eBay account first")
                token = self.user_tokens.access_token() if attempt == 1 else self.user_tokens.refresh()
            else:
                token = self.app_token(force=attempt == 2)
            response = self._send(method, path, params=params, json=json,
                                  headers={**extra, "Authorization": f"Bearer {token}"})
            if response.status_code == 401 and attempt == 1:
                log.info("eBay answered 401 to %s %s; refreshing the token once", method, path)
                continue
            if response.status_code >= 400:
                raise error_from_response(response)
            return response
        raise error_from_response(response)  # pragma: no cover - the loop always returns or raises

    # -- Taxonomy ------------------------------------------------------------------------------------------
    def get_default_category_tree_id(self, marketplace_id=None):
        response = self._call("GET", f"{TAXONOMY}/get_default_category_tree_id",
                              params={"marketplace_id": marketplace_id or self.marketplace_id})
        return self._json(response)

    def get_category_tree(self, category_tree_id):
        response = self._call("GET", f"{TAXONOMY}/category_tree/{category_tree_id}",
                              headers={"Accept-Encoding": "gzip"})
        return self._json(response)

    def get_category_subtree(self, category_tree_id, category_id):
        response = self._call("GET", f"{TAXONOMY}/category_tree/{category_tree_id}/get_category_subtree",
                              params={"category_id": str(category_id)}, headers={"Accept-Encoding": "gzip"})
        return self._json(response)

    def get_item_aspects_for_category(self, category_tree_id, category_id):
        response = self._call(
            "GET", f"{TAXONOMY}/category_tree/{category_tree_id}/get_item_aspects_for_category",
            params={"category_id": str(category_id)},
        )
        # 204: the category has no aspects.
        return self._json(response) or {"aspects": []}

    # -- Marketing -----------------------------------------------------------------------------------------
    def get_campaigns(self, campaign_status=None, limit=100, offset=0):
        params = {"limit": str(limit), "offset": str(offset)}
        if campaign_status:
            params["campaign_status"] = campaign_status
        return self._json(self._call("GET", f"{MARKETING}/ad_campaign", user=True, params=params))

    def create_ad_by_listing_id(self, campaign_id, listing_id, bid_percentage):
        """Create an ad; returns the new ad's id (from the Location header) or None when eBay gave none."""
        response = self._call(
            "POST", f"{MARKETING}/ad_campaign/{campaign_id}/ad", user=True,
            json={"listingId": str(listing_id), "bidPercentage": str(bid_percentage)},
        )
        location = response.headers.get("Location", "")
        return urlsplit(location).path.rstrip("/").rsplit("/", 1)[-1] if location else None

    def get_ads(self, campaign_id, listing_ids=None, limit=100, offset=0):
        params = {"limit": str(limit), "offset": str(offset)}
        if listing_ids:
            params["listing_ids"] = ",".join(str(i) for i in listing_ids)
        return self._json(self._call("GET", f"{MARKETING}/ad_campaign/{campaign_id}/ad", user=True,
                                     params=params))

    # -- Inventory -----------------------------------------------------------------------------------------
    def publish_offer(self, offer_id):
        return self._json(self._call("POST", f"{INVENTORY}/offer/{offer_id}/publish", user=True))
