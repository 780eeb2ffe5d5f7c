"""Jobsite settings. Every value comes from the environment; the defaults run one machine on SQLite.

README.md ("Configuration") lists every variable.
"""

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("JOBSITE_VAR_DIR", BASE_DIR / "var"))


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name, default):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}")


def env_float(name, default):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {value!r}")


def env_list(name, default):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def _local_secret_key():
    # One key per checkout, outside git: web, worker and tests on this machine share it (django-q2 signs
    # tasks with it). Machines that scale out must all set the same SECRET_KEY instead.
    path = VAR_DIR / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(50)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key)
        return key
    except FileExistsError:  # pragma: no cover - another process created it between read and write
        return path.read_text().strip()


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY") or _local_secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "queueapp",
    "imports",
    "ebay",
    "analysis",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "jobsite.urls"
WSGI_APPLICATION = "jobsite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------------
SQLITE_PATH = Path(os.environ.get("SQLITE_PATH", BASE_DIR / "db.sqlite3"))
# Persistent connections: django-q2's ORM broker calls close_old_connections() at every enqueue, which
# with CONN_MAX_AGE=0 reconnects each time (≈25 ms a job on PostgreSQL).
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{SQLITE_PATH}",
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        # The web server, the cluster's workers and the tick all write: WAL lets readers go on during a
        # write, IMMEDIATE takes the write lock at BEGIN (no upgrade deadlock), and the timeout waits for it.
        "transaction_mode": "IMMEDIATE",
        "timeout": env_int("SQLITE_BUSY_TIMEOUT", 30),
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests need a file, not memory: a qcluster subprocess must open the same database.
    DATABASES["default"]["TEST"] = {
        "NAME": os.environ.get("SQLITE_TEST_PATH", str(VAR_DIR / "test_db.sqlite3"))
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (shared between processes: django-q2's qinfo/qmonitor, eBay token cache) ---------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "jobsite_cache",
        }
    }

# --- django-q2: the executor. Attempts, backoff, leases and history live in queueapp. --------------------
JOBS_TASK_TIMEOUT = env_int("JOBS_TASK_TIMEOUT", 3600)
Q_CLUSTER = {
    "name": os.environ.get("Q_CLUSTER_NAME", "jobsite"),
    "workers": env_int("Q_WORKERS", 2),
    "timeout": JOBS_TASK_TIMEOUT,
    # Re-delivery must never start while the first delivery may still run.
    "retry": JOBS_TASK_TIMEOUT + 300,
    "max_attempts": 1,
    "ack_failures": True,
    # queueapp keeps every outcome; successful django-q2 Task rows would only duplicate them.
    "save_limit": -1,
    "catch_up": False,
    "poll": env_float("Q_POLL", 0.2),
    "label": "Django Q (executor)",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- The job engine -------------------------------------------------------------------------------------
JOBS_LEASE_SECONDS = env_int("JOBS_LEASE_SECONDS", 60)
JOBS_RETENTION_DAYS = env_int("JOBS_RETENTION_DAYS", 7)
# A queued job handed to the executor that no worker has claimed after this long is handed over again:
# its task was lost (a worker killed between dequeue and claim, a Redis flush, a database outage while
# the task ran). A duplicate costs one failed claim.
JOBS_REDISPATCH_SECONDS = env_int("JOBS_REDISPATCH_SECONDS", 600)

# --- Auth, REST -----------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# The pages' own login (queueapp/page_urls.py); the admin keeps its own at /admin/login/.
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Jobsite API",
    "DESCRIPTION": "Background jobs for online sellers: start work, follow its progress, fetch its result.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {"JobStatusEnum": "queueapp.models.JobStatus"},
}

# --- i18n, static, media --------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Without collectstatic (tests, make run) WhiteNoise serves from the app folders.
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- ebay -----------------------------------------------------------------------------------------------
# Without credentials Jobsite talks to the fake eBay server (`manage.py fake_ebay`, started by `make run`),
# so every eBay feature works on a fresh checkout. README.ebay.md lists every variable.
EBAY_CLIENT_ID = os.environ.get("EBAY_CLIENT_ID", "")
EBAY_CLIENT_SECRET = os.environ.get("EBAY_CLIENT_SECRET", "")
EBAY_ENV = os.environ.get("EBAY_ENV") or ("production" if EBAY_CLIENT_ID else "fake")
if EBAY_ENV not in {"production", "sandbox", "fake"}:
    raise ImproperlyConfigured(f"EBAY_ENV must be production, sandbox or fake, got {EBAY_ENV!r}")
EBAY_FAKE_URL = os.environ.get("EBAY_FAKE_URL", "http://127.0.0.1:8765")
# Overrides the environment's base URL (OAuth, Taxonomy, Marketing and Inventory share one host).
EBAY_API_BASE_URL = os.environ.get("EBAY_API_BASE_URL") or {
    "production": "https://api.ebay.com",
    "sandbox": "https://api.sandbox.ebay.com",
    "fake": EBAY_FAKE_URL,
}[EBAY_ENV]
EBAY_MARKETPLACE_ID = os.environ.get("EBAY_MARKETPLACE_ID", "EBAY_US")
EBAY_HTTP_TIMEOUT = env_float("EBAY_HTTP_TIMEOUT", 20)
# Spacing between the calls of one job (the seed's 200 ms).
EBAY_CALL_SPACING_SECONDS = env_float("EBAY_CALL_SPACING_SECONDS", 0.2)
# eBay's 429 carries no reset time; without a Retry-After header a spent quota pauses the job this long.
EBAY_QUOTA_PAUSE_SECONDS = env_int("EBAY_QUOTA_PAUSE_SECONDS", 900)
# AES-GCM key for user tokens at rest: 32 bytes, base64. Unset: derived from SECRET_KEY (see README.ebay.md).
EBAY_TOKEN_KEY = os.environ.get("EBAY_TOKEN_KEY", "")
EBAY_CATEGORY_FRESHNESS_HOURS = env_float("EBAY_CATEGORY_FRESHNESS_HOURS", 24 * 7)
EBAY_CATEGORY_FETCH_SLICE_SECONDS = env_float("EBAY_CATEGORY_FETCH_SLICE_SECONDS", 30)
EBAY_CATEGORY_FETCH_CONCURRENCY = env_int("EBAY_CATEGORY_FETCH_CONCURRENCY", 2)
EBAY_CATEGORY_FETCH_MAX_ATTEMPTS = env_int("EBAY_CATEGORY_FETCH_MAX_ATTEMPTS", 5)
EBAY_CATEGORY_ITEM_MAX_ATTEMPTS = env_int("EBAY_CATEGORY_ITEM_MAX_ATTEMPTS", 3)
EBAY_CATEGORY_FETCH_MAX_CATEGORIES = env_int("EBAY_CATEGORY_FETCH_MAX_CATEGORIES", 50_000)
EBAY_PROMOTION_FIRST_DELAY_SECONDS = env_int("EBAY_PROMOTION_FIRST_DELAY_SECONDS", 60)
EBAY_PROMOTION_BACKOFF_BASE_SECONDS = env_int("EBAY_PROMOTION_BACKOFF_BASE_SECONDS", 120)
EBAY_PROMOTION_BACKOFF_CAP_SECONDS = env_int("EBAY_PROMOTION_BACKOFF_CAP_SECONDS", 600)
EBAY_PROMOTION_BACKOFF_JITTER = env_float("EBAY_PROMOTION_BACKOFF_JITTER", 0)
EBAY_PROMOTION_MAX_ATTEMPTS = env_int("EBAY_PROMOTION_MAX_ATTEMPTS", 5)
EBAY_PROMOTION_STAGGER_SECONDS = env_float("EBAY_PROMOTION_STAGGER_SECONDS", 5)
EBAY_PROMOTION_RATE_PER_MINUTE = env_int("EBAY_PROMOTION_RATE_PER_MINUTE", 10)
EBAY_PROMOTION_BATCH_MAX = env_int("EBAY_PROMOTION_BATCH_MAX", 100)

# --- analysis ---
# Sales analyses (seed 002). Uploaded files and reports live under MEDIA_ROOT/analysis/ and are deleted
# with their job by the retention cleanup (JOBS_RETENTION_DAYS).
ANALYSIS_MAX_UPLOAD_MB = env_int("ANALYSIS_MAX_UPLOAD_MB", 512)  # per file; a 1M-row export is ~60-120 MB
ANALYSIS_CONCURRENCY = env_int("ANALYSIS_CONCURRENCY", 2)  # analyses running at once (CPU-bound)
ANALYSIS_MAX_ATTEMPTS = env_int("ANALYSIS_MAX_ATTEMPTS", 2)
ANALYSIS_MIN_SESSIONS = env_int("ANALYSIS_MIN_SESSIONS", 20)  # sessions an item needs for conversion lists
ANALYSIS_TOP_N = env_int("ANALYSIS_TOP_N", 10)  # items per ranking list
ANALYSIS_MAX_RECOMMENDATIONS = env_int("ANALYSIS_MAX_RECOMMENDATIONS", 10)
ANALYSIS_MAX_ROW_ERRORS = env_int("ANALYSIS_MAX_ROW_ERRORS", 200)  # kept in detail; all are counted
ANALYSIS_RESULT_MAX_ITEMS = env_int("ANALYSIS_RESULT_MAX_ITEMS", 5000)  # items table in the result and report
ANALYSIS_RESULT_MAX_KEYWORDS = env_int("ANALYSIS_RESULT_MAX_KEYWORDS", 1000)

# --- imports ---
# Product and dealer imports (imports app, seed 004). docs/imports.md describes each variable.
IMPORTS_MAX_UPLOAD_BYTES = env_int("IMPORTS_MAX_UPLOAD_BYTES", 200 * 1024 * 1024)
IMPORTS_CHUNK_ROWS = env_int("IMPORTS_CHUNK_ROWS", 10_000)
IMPORTS_DEALERS_MAX_ROWS = env_int("IMPORTS_DEALERS_MAX_ROWS", 5_000)
IMPORTS_ZIP_MAX_ENTRY_BYTES = env_int("IMPORTS_ZIP_MAX_ENTRY_BYTES", 1024 * 1024 * 1024)
IMPORTS_ZIP_MAX_TOTAL_BYTES = env_int("IMPORTS_ZIP_MAX_TOTAL_BYTES", 2 * 1024 * 1024 * 1024)
IMPORTS_ZIP_MAX_RATIO = env_int("IMPORTS_ZIP_MAX_RATIO", 100)
IMPORTS_JOB_CONCURRENCY = env_int("IMPORTS_JOB_CONCURRENCY", 2)
IMPORTS_JOB_MAX_ATTEMPTS = env_int("IMPORTS_JOB_MAX_ATTEMPTS", 3)
# Big xlsx files are read and validated in a child process while the job writes the previous chunk.
# Unset or "auto": for files with at least IMPORTS_READ_AHEAD_MIN_ROWS rows left; true/false forces it.
IMPORTS_READ_AHEAD = (None if os.environ.get("IMPORTS_READ_AHEAD", "auto") in ("", "auto")
                      else env_bool("IMPORTS_READ_AHEAD"))
IMPORTS_READ_AHEAD_MIN_ROWS = env_int("IMPORTS_READ_AHEAD_MIN_ROWS", 50_000)
# How many reader processes share such a file (each converts every n-th run of chunk rows).
IMPORTS_READER_PROCESSES = max(1, env_int("IMPORTS_READER_PROCESSES", 2))
# The product search is brought up to date after each import, this many products per transaction.
IMPORTS_SEARCH_REFRESH_BATCH = env_int("IMPORTS_SEARCH_REFRESH_BATCH", 50_000)
# On PostgreSQL, that many batches at once, each on its own connection.
IMPORTS_SEARCH_REFRESH_THREADS = max(1, env_int("IMPORTS_SEARCH_REFRESH_THREADS", 2))
