"""Amazon marketplaces, ASINs and product URLs.

Everything here is offline: a short link (amzn.to, a.co) would need an HTTP request to resolve, so it is
refused with a message instead of being followed.
"""

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass(frozen=True)
class Marketplace:
    code: str
    domain: str
    currency: str
    # Hints for values the data leave ambiguous ("1,234", "03/04/2024"); the file's own evidence wins.
    decimal_comma: bool
    date_order: str  # "MDY", "DMY" or "YMD"


MARKETPLACES = {
    m.code: m
    for m in [
        Marketplace("US", "amazon.com", "USD", False, "MDY"),
        Marketplace("CA", "amazon.ca", "CAD", False, "MDY"),
        Marketplace("MX", "amazon.com.mx", "MXN", False, "DMY"),
        Marketplace("BR", "amazon.com.br", "BRL", True, "DMY"),
        Marketplace("UK", "amazon.co.uk", "GBP", False, "DMY"),
        Marketplace("IE", "amazon.ie", "EUR", False, "DMY"),
        Marketplace("DE", "amazon.de", "EUR", True, "DMY"),
        Marketplace("FR", "amazon.fr", "EUR", True, "DMY"),
        Marketplace("IT", "amazon.it", "EUR", True, "DMY"),
        Marketplace("ES", "amazon.es", "EUR", True, "DMY"),
        Marketplace("NL", "amazon.nl", "EUR", True, "DMY"),
        Marketplace("BE", "amazon.com.be", "EUR", True, "DMY"),
        Marketplace("SE", "amazon.se", "SEK", True, "YMD"),
        Marketplace("PL", "amazon.pl", "PLN", True, "DMY"),
        Marketplace("TR", "amazon.com.tr", "TRY", True, "DMY"),
        Marketplace("AE", "amazon.ae", "AED", False, "DMY"),
        Marketplace("SA", "amazon.sa", "SAR", False, "DMY"),
        Marketplace("EG", "amazon.eg", "EGP", False, "DMY"),
        Marketplace("IN", "amazon.in", "INR", False, "DMY"),
        Marketplace("JP", "amazon.co.jp", "JPY", False, "YMD"),
        Marketplace("AU", "amazon.com.au", "AUD", False, "DMY"),
        Marketplace("SG", "amazon.sg", "SGD", False, "DMY"),
    ]
}
# Names sellers use for the same marketplace.
ALIASES = {"GB": "UK", "COM": "US", "USA": "US", "JAPAN": "JP", "GERMANY": "DE", "UNITED KINGDOM": "UK"}
DOMAINS = {m.domain: m.code for m in MARKETPLACES.values()}
DOMAINS["amazon.co.uk"] = "UK"
DOMAINS["amazon.jp"] = "JP"
DOMAINS["smile.amazon.com"] = "US"
SHORT_LINK_HOSTS = {"amzn.to", "amzn.eu", "amzn.asia", "a.co", "amzn.com"}

# Product ASINs start with B0; books use their ISBN-10 (nine digits and a digit or X).
ASIN_RE = re.compile(r"^(?:B0[A-Z0-9]{8}|[0-9]{9}[0-9X])$")
_URL_ASIN = re.compile(
    r"/(?:dp|gp/product|gp/aw/d|gp/offer-listing|exec/obidos/asin|exec/obidos/tg/detail/-|o|"
    r"product-reviews|d)/([A-Za-z0-9]{10})(?:[/?#]|$)"
)


class InvalidInput(ValueError):
    """A value the seller must correct; str() says what was wrong and what to do."""


def is_asin(value: str) -> bool:
    return bool(ASIN_RE.match(value))


def normalise_asin(value: str) -> str:
    return value.strip().upper()


def marketplace(code: str) -> Marketplace:
    key = (code or "").strip().upper()
    key = ALIASES.get(key, key)
    found = MARKETPLACES.get(key)
    if found is None:
        raise InvalidInput(
            f"Unknown marketplace {code!r}. Use one of: {', '.join(MARKETPLACES)}."
        )
    return found


def marketplace_of_host(host: str) -> str | None:
    host = host.lower().rstrip(".")
    for prefix in ("www.", "m."):
        if host.startswith(prefix):
            host = host[len(prefix):]
    return DOMAINS.get(host)


def parse_asin_or_url(value: str) -> tuple[str, str | None]:
    """Return (ASIN, marketplace code of the URL's domain or None) or raise InvalidInput."""
    text = (value or "").strip()
    if not text:
        raise InvalidInput("Give the product's ASIN (e.g. B0D9C28SVB) or its Amazon product URL.")
    candidate = normalise_asin(text)
    if is_asin(candidate):
        return candidate, None
    if "/" not in text and "." not in text:
        raise InvalidInput(
            f"{text!r} is not an ASIN: an ASIN has 10 characters, B0 followed by 8 letters or digits "
            "(or a book's ISBN-10)."
        )
    url = text if "://" in text else "https://" + text
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidInput(f"{text!r} is neither an ASIN nor an http(s) URL.")
    if host in SHORT_LINK_HOSTS:
        raise InvalidInput(
            f"{host} short links cannot be resolved here (no outside requests). Open the link and paste "
            "the full product URL, or give the ASIN."
        )
    code = marketplace_of_host(host)
    if code is None:
        raise InvalidInput(f"{host} is not an Amazon store domain. Give an Amazon product URL or the ASIN.")
    match = _URL_ASIN.search(unquote(parts.path))
    asin = normalise_asin(match.group(1)) if match else None
    if asin is None:
        query_asin = parse_qs(parts.query).get("asin", [None])[0]
        asin = normalise_asin(query_asin) if query_asin else None
    if asin is None or not is_asin(asin):
        raise InvalidInput(
            "No ASIN found in this URL. A product URL looks like https://www.amazon.com/dp/B0D9C28SVB; "
            "or give the ASIN itself."
        )
    return asin, code
