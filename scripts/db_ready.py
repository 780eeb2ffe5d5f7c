"""Exit 0 when the PostgreSQL server in the given URL accepts connections, 1 otherwise (with the reason)."""

import sys

import dj_database_url
import psycopg


def main(url):
    config = dj_database_url.parse(url)
    try:
        # The server, not the test database: pytest-django creates test_<name> itself.
        psycopg.connect(host=config["HOST"] or "127.0.0.1", port=config["PORT"] or 5432,
                        user=config["USER"] or None, password=config["PASSWORD"] or None,
                        dbname="postgres", connect_timeout=5).close()
    except psycopg.Error as exc:
        print(f"PostgreSQL not reachable: {exc}".strip(), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
