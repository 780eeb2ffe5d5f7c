"""Start the web server and the worker cluster together (and the fake eBay server when no eBay credentials
are configured); Ctrl-C (or SIGTERM) stops them all."""

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", default="8000")
    parser.add_argument("--ebay-port", default=os.environ.get("EBAY_FAKE_PORT", "8765"),
                        help="Port of the fake eBay server (started when EBAY_CLIENT_ID is not set).")
    args = parser.parse_args()

    python = sys.executable
    env = os.environ.copy()
    processes = {}
    fake_ebay = not env.get("EBAY_CLIENT_ID") and env.get("EBAY_ENV", "fake") == "fake"
    if fake_ebay:
        # No eBay credentials: every eBay feature runs against the fake eBay server on loopback.
        processes["fake-ebay"] = [python, "manage.py", "fake_ebay", "--port", str(args.ebay_port)]
        env["EBAY_ENV"] = "fake"
        env.setdefault("EBAY_API_BASE_URL", f"http://127.0.0.1:{args.ebay_port}")
    processes["web"] = [python, "manage.py", "runserver", f"{args.host}:{args.port}", "--noreload"]
    processes["worker"] = [python, "manage.py", "qcluster"]
    running = {}
    for name, command in processes.items():
        running[name] = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
        if name == "fake-ebay":
            _wait_for_port(int(args.ebay_port))

    base = f"http://{args.host}:{args.port}"
    print(
        f"\nJobsite is starting:\n"
        f"  Log in:      {base}/login/  (demo user and password printed above)\n"
        f"  Dashboard:   {base}/\n"
        f"  Admin:       {base}/admin/\n"
        f"  Jobs API:    {base}/api/jobs/\n"
        f"  API docs:    {base}/api/docs/\n"
        + (f"  eBay:        fake eBay server at {env['EBAY_API_BASE_URL']} (set EBAY_CLIENT_ID/EBAY_CLIENT_SECRET "
           f"for real eBay)\n" if fake_ebay else f"  eBay:        {env.get('EBAY_ENV', 'production')}\n")
        + "Press Ctrl-C to stop them all.\n",
        flush=True,
    )

    stopping = False

    def stop(signum=None, frame=None):
        nonlocal stopping
        if stopping:
            return
        stopping = True
        # SIGTERM to each main process only: qcluster then stops its own workers cleanly.
        for proc in running.values():
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 20
        for proc in running.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:  # whatever is left of its process group
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    try:
        while not stopping:
            for name, proc in running.items():
                if proc.poll() is not None:
                    print(f"{name} exited with status {proc.returncode}; stopping the others.", flush=True)
                    exit_code = proc.returncode or 1
                    stop()
                    break
            time.sleep(0.5)
    finally:
        stop()
    return exit_code


def _wait_for_port(port, timeout=15):
    """The web server and workers may call eBay at once: let the fake server bind first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    print(f"warning: the fake eBay server did not open port {port} within {timeout} s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
