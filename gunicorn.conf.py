"""Production web server settings (gunicorn reads this file from the working directory).

    gunicorn jobsite.wsgi -b 0.0.0.0:8000
"""

import os

worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "8"))
# Longer than the pages' 2 s polling interval, so a poller's idle connection is not closed just as it
# is reused (which a client sees as a dropped request).
keepalive = int(os.environ.get("WEB_KEEPALIVE", "5"))
# Uploads of large spreadsheets stream to disk; give them time.
timeout = int(os.environ.get("WEB_TIMEOUT", "120"))
accesslog = os.environ.get("WEB_ACCESS_LOG") or None
