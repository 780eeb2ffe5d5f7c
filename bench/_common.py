"""Shared set-up for the benchmarks: a throw-away database and child processes."""

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def fresh_database_env(db, name):
    """Environment pointing at a new, empty database called `name` (SQLite file under var/, or PostgreSQL)."""
    env = dict(os.environ)
    env.pop("REDIS_URL", None)
    if db == "sqlite":
        path = ROOT / "var" / f"{name}.sqlite3"
        path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        env.pop("DATABASE_URL", None)
        env["SQLITE_PATH"] = str(path)
    else:
        import psycopg

        server = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {name}")
        env["DATABASE_URL"] = f"{server}/{name}"
    env.setdefault("LOG_LEVEL", "WARNING")
    return env


def migrate_and_setup_django(env):
    """Migrate the database in `env`, then point this process's Django at it."""
    subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run([PYTHON, "manage.py", "createcachetable"], cwd=ROOT, env=env, check=True)
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "jobsite.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def start(args, env, log_name):
    log = open(ROOT / "var" / f"{log_name}.log", "wb")
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
