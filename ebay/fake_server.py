"""A fake eBay on loopback: OAuth, Taxonomy, Marketing and Inventory's publishOffer, with deterministic data
and faults that tests and demos switch on.

It speaks the shapes of eBay's OpenAPI contracts (../shared/ebay-specs): the same paths, query parameters,
error bodies ({"errors": [{"errorId", "message", ...}]}) and headers (Location on createAdByListingId).

Control it in-process (`server.state`, a FakeState) or over HTTP: `GET /__fake__/state` shows the counters,
`POST /__fake__/faults` with JSON changes the faults (see FakeState.configure).
"""

import json
import random
import secrets
import socket
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

TREE_ID = "0"
TREE_VERSION = "128"
HEALTH_AND_BEAUTY = "26395"
MARKETPLACE_TREES = {"EBAY_US": "0", "EBAY_MOTORS_US": "100", "EBAY_GB": "3", "EBAY_DE": "77", "EBAY_AU": "15"}
TOKEN_SECONDS = 7200

# Real eBay US top-level categories (id, name) and, for Health & Beauty, its real second level.
TOP_LEVEL = [
    ("20081", "Antiques"), ("550", "Art"), ("2984", "Baby"), ("267", "Books & Magazines"),
    ("12576", "Business & Industrial"), ("625", "Cameras & Photo"), ("15032", "Cell Phones & Accessories"),
    ("11450", "Clothing, Shoes & Accessories"), ("11116", "Coins & Paper Money"), ("1", "Collectibles"),
    ("58058", "Computers/Tablets & Networking"), ("293", "Consumer Electronics"), ("14339", "Crafts"),
    ("237", "Dolls & Bears"), ("11232", "Movies & TV"), ("26395", "Health & Beauty"),
    ("11700", "Home & Garden"), ("281", "Jewelry & Watches"), ("11233", "Music"),
    ("619", "Musical Instruments & Gear"), ("1281", "Pet Supplies"), ("870", "Pottery & Glass"),
    ("888", "Sporting Goods"), ("64482", "Sports Mem, Cards & Fan Shop"), ("260", "Stamps"),
    ("220", "Toys & Hobbies"), ("3252", "Travel"), ("1249", "Video Games & Consoles"),
]
HEALTH_AND_BEAUTY_CHILDREN = [
    ("11838", "Bath & Body"), ("180345", "Fragrances"), ("11854", "Hair Care & Styling"),
    ("67588", "Health Care"), ("31786", "Makeup"), ("47945", "Manicure & Pedicure"), ("36447", "Massage"),
    ("67659", "Natural & Alternative Remedies"), ("31769", "Oral Care"),
    ("31762", "Shaving & Hair Removal"), ("11863", "Skin Care"), ("31772", "Sun Protection & Tanning"),
    ("33914", "Tattoos & Body Art"), ("31414", "Vision Care"), ("180959", "Vitamins & Dietary Supplements"),
    ("11778", "Medical & Mobility"),
]
QUALIFIERS = ["Organic", "Travel", "Professional", "Vintage", "Natural", "Sensitive", "Men's", "Women's",
              "Kids'", "Unisex", "Luxury", "Everyday", "Sport", "Eco", "Classic", "Compact", "Deluxe",
              "Mini", "Herbal", "Scented"]
NOUNS = ["Kits", "Sets", "Tools", "Brushes", "Creams", "Oils", "Lotions", "Sprays", "Gels", "Serums",
         "Powders", "Accessories", "Cases", "Devices", "Supplies", "Refills", "Bundles", "Samples",
         "Wipes", "Masks", "Balms", "Soaps", "Washes", "Tonics", "Cleansers"]
ASPECT_LIBRARY = [
    ("Brand", "FREE_TEXT", ["Unbranded", "Acme", "Northwind", "Contoso", "Fabrikam", "Globex"]),
    ("Type", "SELECTION_ONLY", ["Standard", "Travel Size", "Refill", "Set"]),
    ("Size", "FREE_TEXT", ["Small", "Medium", "Large", "Full Size"]),
    ("Color", "FREE_TEXT", ["Black", "White", "Red", "Blue", "Green", "Clear"]),
    ("Features", "FREE_TEXT", ["Cruelty-Free", "Paraben-Free", "Vegan", "Hypoallergenic"]),
    ("Skin Type", "SELECTION_ONLY", ["All", "Dry", "Oily", "Combination", "Sensitive"]),
    ("Volume", "FREE_TEXT", ["1 oz", "2 oz", "4 oz", "8 oz", "16 oz"]),
    ("Country/Region of Manufacture", "SELECTION_ONLY", ["United States", "China", "France", "Germany"]),
    ("Formulation", "SELECTION_ONLY", ["Cream", "Gel", "Liquid", "Powder", "Spray"]),
    ("Scent", "FREE_TEXT", ["Unscented", "Lavender", "Citrus", "Vanilla", "Rose"]),
    ("Expiration Date", "FREE_TEXT", []),
    ("Department", "SELECTION_ONLY", ["Men", "Women", "Unisex Adult", "Kids"]),
]


def _node(category_id, name, level, parent_id=None):
    return {"id": category_id, "name": name, "level": level, "parent": parent_id, "children": []}


def build_tree(seed=395):
    """A deterministic category tree of realistic shape: 28 top-level categories, 4 levels deep,
    about 4,300 categories (3,500 leaves), 1,280 leaves under 26395 Health & Beauty."""
    rng = random.Random(seed)
    next_id = [100000]
    reserved = {cid for cid, _ in TOP_LEVEL + HEALTH_AND_BEAUTY_CHILDREN}

    def new_id():
        next_id[0] += rng.randint(1, 97)
        while str(next_id[0]) in reserved:
            next_id[0] += 1
        return str(next_id[0])

    def names(count):
        picked = set()
        while len(picked) < count:
            picked.add(f"{rng.choice(QUALIFIERS)} {rng.choice(NOUNS)}")
        return sorted(picked)

    root = _node("0", "Root", 0)
    nodes = {"0": root}

    def add(parent, category_id, name):
        node = _node(category_id, name, parent["level"] + 1, parent["id"])
        parent["children"].append(node)
        nodes[category_id] = node
        return node

    for top_id, top_name in TOP_LEVEL:
        top = add(root, top_id, top_name)
        if top_id == HEALTH_AND_BEAUTY:
            # 16 x 8 x 10 = 1,280 leaves: enough for the 1,000-category benchmark.
            for child_id, child_name in HEALTH_AND_BEAUTY_CHILDREN:
                child = add(top, child_id, child_name)
                for third_name in names(8):
                    third = add(child, new_id(), third_name)
                    for fourth_name in names(10):
                        add(third, new_id(), f"{fourth_name} ({third_name})")
        else:
            for second_name in names(rng.randint(5, 8)):
                second = add(top, new_id(), f"{top_name.split(' ')[0].rstrip(',')} {second_name}")
                for third_name in names(rng.randint(4, 9)):
                    third = add(second, new_id(), third_name)
                    if rng.random() < 0.4:
                        for fourth_name in names(rng.randint(2, 5)):
                            add(third, new_id(), fourth_name)
    return root, nodes


def aspects_for(category_id):
    """Deterministic aspects for a leaf: 5 to 9 of the library, Brand always first and required."""
    rng = random.Random(int(category_id))
    picked = [ASPECT_LIBRARY[0]] + rng.sample(ASPECT_LIBRARY[1:], rng.randint(4, 8))
    aspects = []
    for index, (name, mode, values) in enumerate(picked):
        aspects.append({
            "localizedAspectName": name,
            "aspectConstraint": {
                "aspectDataType": "DATE" if name == "Expiration Date" else "STRING",
                "aspectMode": mode,
                "aspectRequired": index == 0,
                "aspectUsage": "RECOMMENDED",
                "aspectEnabledForVariations": name in {"Color", "Size", "Scent"},
                "itemToAspectCardinality": "MULTI" if name == "Features" else "SINGLE",
                "aspectMaxLength": 65,
            },
            "aspectValues": [{"localizedValue": value} for value in values],
        })
    return {"aspects": aspects}


def error_body(error_id, message, domain="API_TAXONOMY", category="REQUEST", **parameters):
    error = {"domain": domain, "category": category, "message": message, "longMessage": message,
             "parameters": [{"name": k, "value": str(v)} for k, v in parameters.items()]}
    if error_id is not None:
        error["errorId"] = error_id
    return {"errors": [error]}


class FakeState:
    """Everything the fake remembers: tokens, campaigns, ads, published listings, faults and a request log.
    All access goes through `lock`: the server answers on many threads."""

    def __init__(self, seed=395):
        self.lock = threading.RLock()
        self.root, self.nodes = build_tree(seed)
        self.requests = deque(maxlen=20000)
        self.app_tokens = {}   # token -> expiry (epoch seconds)
        self.user_tokens = {}  # token -> (refresh_token, expiry)
        self.token_grants = {"client_credentials": 0, "refresh_token": 0}
        self.campaigns = {
            "151310691012": {"campaignId": "151310691012", "campaignName": "Jobsite general",
                             "campaignStatus": "RUNNING", "marketplaceId": "EBAY_US",
                             "fundingStrategy": {"fundingModel": "COST_PER_SALE", "bidPercentage": "5.0"},
                             "startDate": "2026-01-01T00:00:00Z"},
            "151310691013": {"campaignId": "151310691013", "campaignName": "Last season",
                             "campaignStatus": "ENDED", "marketplaceId": "EBAY_US",
                             "fundingStrategy": {"fundingModel": "COST_PER_SALE", "bidPercentage": "4.0"},
                             "startDate": "2025-01-01T00:00:00Z", "endDate": "2025-12-31T23:59:59Z"},
        }
        self.ads = {}  # ad_id -> ad dict
        self.next_ad = 10_000_000_001
        self.published = {}  # listing_id -> publish time (epoch)
        self.reset_faults()

    def reset_faults(self):
        with self.lock:
            self.not_found_categories = set()      # getItemAspectsForCategory answers 404
            self.error_500_categories = {}         # category id -> how many more 500s it answers
            self.error_500_next = 0                # the next n API calls answer 500
            self.quota_limit = None                # API calls allowed per window; None: unlimited
            self.quota_window_seconds = 60.0
            self.quota_window_start = None
            self.quota_used = 0
            self.sync_delay_seconds = 0.0          # 35048 for this long after publishOffer
            self.sync_delay_calls = {}             # listing id -> how many more createAd calls answer 35048
            self.ended_listings = set()            # 35048 for ever
            self.not_eligible_listings = set()     # 35058 (409)
            self.drop_after_create = set()         # create the ad, then close the connection unanswered
            self.create_delay_seconds = 0.0        # create the ad, then wait this long before answering
            self.reject_user_tokens = 0            # the next n user-token calls answer 401
            self.response_delay_seconds = 0.0      # every API call waits this long first

    def configure(self, **faults):
        """Switch faults: not_found_categories, error_500_categories ({id: n}), error_500_next, quota_limit,
        quota_window_seconds, sync_delay_seconds, sync_delay_calls ({listing: n}), ended_listings,
        not_eligible_listings, drop_after_create, create_delay_seconds, reject_user_tokens,
        response_delay_seconds, reset (true: all faults off first), expire_tokens (true)."""
        with self.lock:
            if faults.pop("reset", False):
                self.reset_faults()
            if faults.pop("expire_tokens", False):
                self.app_tokens.clear()
                self.user_tokens.clear()
            for name, value in faults.items():
                if not hasattr(self, name) or name.startswith("_") or callable(getattr(self, name)):
                    raise ValueError(f"unknown fault {name!r}")
                current = getattr(self, name)
                if isinstance(current, set):
                    value = {str(v) for v in value}
                elif isinstance(current, dict):
                    value = {str(k): int(v) for k, v in value.items()}
                setattr(self, name, value)
            if "quota_limit" in faults or "quota_window_seconds" in faults:
                self.quota_window_start, self.quota_used = None, 0

    def snapshot(self):
        with self.lock:
            return {
                "token_grants": dict(self.token_grants),
                "requests": len(self.requests),
                "ads": list(self.ads.values()),
                "campaigns": list(self.campaigns.values()),
                "published": sorted(self.published),
                "quota_used": self.quota_used,
                "quota_limit": self.quota_limit,
            }

    def ads_for(self, listing_id, campaign_id=None):
        with self.lock:
            return [ad for ad in self.ads.values() if ad["listingId"] == str(listing_id)
                    and (campaign_id is None or ad["campaignId"] == str(campaign_id))]

    def requests_to(self, path_part):
        with self.lock:
            return [r for r in self.requests if path_part in r["path"]]

    # -- behaviour -----------------------------------------------------------------------------------------
    def quota_check(self):
        """Seconds until the quota resets when it is spent, else None (and the call is counted)."""
        with self.lock:
            if self.quota_limit is None:
                return None
            now = time.monotonic()
            if self.quota_window_start is None or now - self.quota_window_start >= self.quota_window_seconds:
                self.quota_window_start, self.quota_used = now, 0
            if self.quota_used >= self.quota_limit:
                return max(1, int(self.quota_window_start + self.quota_window_seconds - now + 0.999))
            self.quota_used += 1
            return None

    def issue_token(self, grant, refresh_token=None):
        with self.lock:
            token = f"fake-{'app' if grant == 'client_credentials' else 'user'}-{secrets.token_hex(12)}"
            expiry = time.time() + TOKEN_SECONDS
            if grant == "client_credentials":
                self.app_tokens[token] = expiry
            else:
                self.user_tokens[token] = (refresh_token, expiry)
            self.token_grants[grant] += 1
            return token

    def token_kind(self, token):
        with self.lock:
            now = time.time()
            if self.app_tokens.get(token, 0) > now:
                return "app"
            if token in self.user_tokens and self.user_tokens[token][1] > now:
                if self.reject_user_tokens > 0:
                    self.reject_user_tokens -= 1
                    del self.user_tokens[token]
                    return None
                return "user"
            return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeEbay/1.0"

    def setup(self):
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle's algorithm and the client's
        # delayed ACK add ~40 ms to every answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format, *args):  # the request log in FakeState replaces stderr noise
        pass

    @property
    def state(self) -> FakeState:
        return self.server.state

    # -- plumbing ------------------------------------------------------------------------------------------
    def _reply(self, status, body=None, headers=None):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self, method):
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        raw = self._body()
        record = {"method": method, "path": parts.path, "query": query, "headers": dict(self.headers.items()),
                  "body": raw.decode(errors="replace"), "at": time.time()}
        if not parts.path.startswith("/__fake__"):
            with self.state.lock:
                self.state.requests.append(record)
        try:
            self._route(method, parts.path, query, raw)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_DELETE(self):
        self._handle("DELETE")

    # -- routing -------------------------------------------------------------------------------------------
    def _route(self, method, path, query, raw):
        if path.startswith("/__fake__/"):
            return self._control(method, path, raw)
        if path == "/identity/v1/oauth2/token" and method == "POST":
            return self._token(raw)
        kind = self._auth()
        if kind is None:
            return self._reply(401, error_body(1001, "Invalid access token. Check the value of the "
                                               "Authorization HTTP request header.", domain="OAuth",
                                               category="REQUEST"))
        if self.state.response_delay_seconds:
            time.sleep(self.state.response_delay_seconds)
        reset = self.state.quota_check()
        if reset is not None:
            return self._reply(429, error_body(2001, "The request limit has been reached for the resource.",
                                               domain="ACCESS", category="REQUEST"),
                               headers={"Retry-After": str(reset)})
        with self.state.lock:
            if self.state.error_500_next > 0:
                self.state.error_500_next -= 1
                fail = True
            else:
                fail = False
        if fail:
            return self._reply(500, error_body(62000 if "/taxonomy/" in path else 35001,
                                               "There was a problem with an eBay internal system or process.",
                                               category="APPLICATION"))
        segments = [s for s in path.split("/") if s]
        if path.startswith("/commerce/taxonomy/v1/") and method == "GET":
            return self._taxonomy(segments[3:], query)
        if path.startswith("/sell/marketing/v1/"):
            if kind != "user":
                return self._reply(403, error_body(1100, "Access denied: insufficient permissions "
                                                   "(a user token with sell.marketing is required).",
                                                   domain="ACCESS"))
            return self._marketing(method, segments[3:], query, raw)
        if path.startswith("/sell/inventory/v1/"):
            if kind != "user":
                return self._reply(403, error_body(1100, "Access denied: a user token is required.",
                                                   domain="ACCESS"))
            return self._inventory(method, segments[3:])
        return self._reply(404, error_body(None, f"No such resource: {method} {path}", domain="FAKE"))

    def _auth(self):
        header = self.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return None
        return self.state.token_kind(header[len("Bearer "):])

    def _token(self, raw):
        form = {k: v[-1] for k, v in parse_qs(raw.decode()).items()}
        if not self.headers.get("Authorization", "").startswith("Basic "):
            return self._reply(401, {"error": "invalid_client", "error_description": "client authentication failed"})
        grant = form.get("grant_type")
        if grant == "client_credentials":
            if form.get("scope") != "https://api.ebay.com/oauth/api_scope":
                return self._reply(400, {"error": "invalid_scope",
                                         "error_description": "The requested scope is invalid"})
            token = self.state.issue_token(grant)
        elif grant == "refresh_token":
            refresh = form.get("refresh_token", "")
            if not refresh or refresh.startswith("revoked"):
                return self._reply(400, {"error": "invalid_grant",
                                         "error_description": "the provided authorization refresh token is "
                                                              "invalid or was issued to another client"})
            token = self.state.issue_token(grant, refresh)
        else:
            return self._reply(400, {"error": "unsupported_grant_type",
                                     "error_description": f"grant type {grant!r} is not supported"})
        return self._reply(200, {"access_token": token, "expires_in": TOKEN_SECONDS,
                                 "token_type": "User Access Token" if grant == "refresh_token"
                                 else "Application Access Token"})

    # -- Taxonomy ------------------------------------------------------------------------------------------
    def _taxonomy(self, segments, query):
        state = self.state
        if segments == ["get_default_category_tree_id"]:
            marketplace = query.get("marketplace_id")
            if marketplace not in MARKETPLACE_TREES:
                return self._reply(400, error_body(62001, f"The marketplace ID {marketplace!r} is invalid."))
            return self._reply(200, {"categoryTreeId": MARKETPLACE_TREES[marketplace],
                                     "categoryTreeVersion": TREE_VERSION})
        if len(segments) < 2 or segments[0] != "category_tree":
            return self._reply(404, error_body(None, "Not found", domain="FAKE"))
        tree_id = segments[1]
        if tree_id != TREE_ID:
            return self._reply(400, error_body(62004, "The specified category tree ID was not found."))
        if len(segments) == 2:
            return self._reply(200, {"categoryTreeId": TREE_ID, "categoryTreeVersion": TREE_VERSION,
                                     "applicableMarketplaceIds": ["EBAY_US"],
                                     "rootCategoryNode": self._render(state.root)})
        operation = segments[2]
        category_id = query.get("category_id")
        if operation in {"get_category_subtree", "get_item_aspects_for_category"}:
            if not category_id:
                return self._reply(400, error_body(62006, "Missing category ID."))
            node = state.nodes.get(category_id)
            if node is None:
                return self._reply(400, error_body(
                    62005, "The specified category ID does not belong to specified category tree.",
                    categoryId=category_id))
            if category_id == "0":
                return self._reply(400, error_body(62008, "The specified category ID is the root for the "
                                                          "category tree."))
        if operation == "get_category_subtree":
            return self._reply(200, {"categoryTreeId": TREE_ID, "categoryTreeVersion": TREE_VERSION,
                                     "categorySubtreeNode": self._render(node)})
        if operation == "get_item_aspects_for_category":
            with state.lock:
                if category_id in state.not_found_categories:
                    missing = True
                else:
                    missing = False
                    remaining = state.error_500_categories.get(category_id, 0)
                    if remaining > 0:
                        state.error_500_categories[category_id] = remaining - 1
            if missing:
                return self._reply(404, error_body(None, f"Category {category_id} was not found."))
            if remaining > 0:
                return self._reply(500, error_body(62000, "There was a problem with an eBay internal system "
                                                          "or process.", category="APPLICATION"))
            if node["children"]:
                return self._reply(400, error_body(62009, "The specified category ID must be a leaf category."))
            return self._reply(200, aspects_for(category_id))
        return self._reply(404, error_body(None, f"No such Taxonomy operation {operation!r}", domain="FAKE"))

    def _render(self, node):
        rendered = {
            "category": {"categoryId": node["id"], "categoryName": node["name"]},
            "categoryTreeNodeLevel": node["level"],
        }
        if node["parent"] is not None:
            rendered["parentCategoryTreeNodeHref"] = (
                f"{self._base()}/commerce/taxonomy/v1/category_tree/{TREE_ID}/get_category_subtree"
                f"?category_id={node['parent']}"
            )
        if node["children"]:
            rendered["childCategoryTreeNodes"] = [self._render(child) for child in node["children"]]
        else:
            rendered["leafCategoryTreeNode"] = True
        return rendered

    def _base(self):
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    # -- Marketing -----------------------------------------------------------------------------------------
    def _marketing(self, method, segments, query, raw):
        state = self.state
        if segments == ["ad_campaign"] and method == "GET":
            wanted = {s for s in query.get("campaign_status", "").split(",") if s}
            with state.lock:
                campaigns = [c for c in state.campaigns.values() if not wanted or c["campaignStatus"] in wanted]
            limit, offset = int(query.get("limit", 10)), int(query.get("offset", 0))
            return self._reply(200, {"campaigns": campaigns[offset:offset + limit], "total": len(campaigns),
                                     "limit": limit, "offset": offset})
        if len(segments) == 3 and segments[0] == "ad_campaign" and segments[2] == "ad":
            campaign_id = segments[1]
            with state.lock:
                campaign = state.campaigns.get(campaign_id)
            if campaign is None:
                return self._reply(400 if method == "POST" else 404, error_body(
                    35045, f"No campaign found for campaign id {campaign_id}.", domain="API_MARKETING",
                    campaign_id=campaign_id))
            if method == "GET":
                listing_ids = {s for s in query.get("listing_ids", "").split(",") if s}
                with state.lock:
                    ads = [ad for ad in state.ads.values() if ad["campaignId"] == campaign_id
                           and (not listing_ids or ad["listingId"] in listing_ids)]
                return self._reply(200, {"ads": [{k: v for k, v in ad.items() if k != "campaignId"}
                                                 for ad in ads], "total": len(ads)})
            if method == "POST":
                return self._create_ad(campaign, raw)
        return self._reply(404, error_body(None, "Not found", domain="FAKE"))

    def _create_ad(self, campaign, raw):
        state = self.state
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return self._reply(400, error_body(35014, "The request body is not valid JSON.", domain="API_MARKETING"))
        listing_id = str(body.get("listingId") or "")
        campaign_id = campaign["campaignId"]
        if not listing_id:
            return self._reply(400, error_body(35014, "The listing ID is required for this call.",
                                               domain="API_MARKETING"))
        if not listing_id.isdigit():
            return self._reply(400, error_body(35013, f"The listing ID {listing_id} is not valid.",
                                               domain="API_MARKETING"))
        if campaign["campaignStatus"] == "ENDED":
            return self._reply(400, error_body(35035, f"The campaign with campaign id {campaign_id} has ended.",
                                               domain="API_MARKETING"))
        bid = body.get("bidPercentage")
        try:
            valid_bid = isinstance(bid, str) and 2.0 <= float(bid) <= 100.0
        except ValueError:
            valid_bid = False
        if not valid_bid:
            return self._reply(400, error_body(
                35007, f"The 'bidPercentage' {bid} is not valid. The bid percentage should be a single "
                       "precision value. Minimum value: 2.0 , Maximum value:100.0.", domain="API_MARKETING"))
        with state.lock:
            if listing_id in state.not_eligible_listings:
                answer = (409, error_body(35058, f"The listing ID {listing_id} is not a fixed price item. This "
                                                 "is a requirement for a promoted listing.",
                                          domain="API_MARKETING", category="BUSINESS"))
            elif listing_id in state.ended_listings or self._not_synced(listing_id):
                answer = (400, error_body(35048, f"The listing ID {listing_id} is invalid or has ended.",
                                          domain="API_MARKETING"))
            elif any(ad["listingId"] == listing_id and ad["campaignId"] == campaign_id for ad in state.ads.values()):
                answer = (400, error_body(35036, f"An ad for listing ID {listing_id} already exists.",
                                          domain="API_MARKETING"))
            else:
                ad_id = str(state.next_ad)
                state.next_ad += 1
                state.ads[ad_id] = {"adId": ad_id, "campaignId": campaign_id, "listingId": listing_id,
                                    "bidPercentage": bid, "adStatus": "ACTIVE",
                                    "inventoryReferenceId": listing_id,
                                    "inventoryReferenceType": "INVENTORY_ITEM"}
                answer = (201, None, ad_id)
            drop = listing_id in state.drop_after_create and answer[0] == 201
            if drop:
                state.drop_after_create.discard(listing_id)
            delay = state.create_delay_seconds if answer[0] == 201 else 0
        if drop:
            # The ad exists but the caller never hears it: what a crash or a lost connection looks like.
            self.close_connection = True
            self.connection.close()
            return None
        if delay:
            time.sleep(delay)
        if answer[0] == 201:
            location = f"{self._base()}/sell/marketing/v1/ad_campaign/{campaign_id}/ad/{answer[2]}"
            return self._reply(201, None, headers={"Location": location})
        return self._reply(answer[0], answer[1])

    def _not_synced(self, listing_id):
        state = self.state
        remaining = state.sync_delay_calls.get(listing_id, 0)
        if remaining > 0:
            state.sync_delay_calls[listing_id] = remaining - 1
            return True
        published = state.published.get(listing_id)
        return published is not None and time.time() - published < state.sync_delay_seconds

    # -- Inventory -----------------------------------------------------------------------------------------
    def _inventory(self, method, segments):
        if method == "POST" and len(segments) == 3 and segments[0] == "offer" and segments[2] == "publish":
            offer_id = segments[1]
            if not offer_id.isdigit():
                return self._reply(404, error_body(25713, f"Offer {offer_id} is not available.",
                                                   domain="API_INVENTORY"))
            listing_id = str(110_000_000_000 + int(offer_id) % 10_000_000_000)
            with self.state.lock:
                self.state.published.setdefault(listing_id, time.time())
            return self._reply(200, {"listingId": listing_id, "warnings": []})
        return self._reply(404, error_body(None, "Not found", domain="FAKE"))

    # -- control -------------------------------------------------------------------------------------------
    def _control(self, method, path, raw):
        if path == "/__fake__/state" and method == "GET":
            return self._reply(200, self.state.snapshot())
        if path == "/__fake__/faults" and method == "POST":
            try:
                self.state.configure(**json.loads(raw or b"{}"))
            except (ValueError, TypeError) as exc:
                return self._reply(400, {"detail": str(exc)})
            return self._reply(200, {"ok": True})
        return self._reply(404, {"detail": "unknown control path"})


class FakeEbayServer:
    """The fake on a thread: `FakeEbayServer(port=0).start()`; `url`, `state`, `stop()`."""

    def __init__(self, host="127.0.0.1", port=0, seed=395):
        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.httpd.state = FakeState(seed)
        self.thread = None

    @property
    def state(self) -> FakeState:
        return self.httpd.state

    @property
    def url(self):
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self):
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="fake-ebay", daemon=True)
        self.thread.start()
        return self

    def serve_forever(self):
        self.httpd.serve_forever()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


