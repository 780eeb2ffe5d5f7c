"""Start the web server and the worker cluster together; Ctrl-C (or SIGTERM) stops them all."""

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", default="8000")
    args = parser.parse_args()

    python = sys.executable
    processes = {
        "web": [python, "manage.py", "runserver", f"{args.host}:{args.port}", "--noreload"],
        "worker": [python, "manage.py", "qcluster"],
    }
    running = {}
    for name, command in processes.items():
        running[name] = subprocess.Popen(command, cwd=ROOT, env=os.environ.copy(), start_new_session=True)

    base = f"http://{args.host}:{args.port}"
    print(
        f"\nJobsite is starting:\n"
        f"  Log in:      {base}/admin/  (demo user printed above)\n"
        f"  Jobs API:    {base}/api/jobs/\n"
        f"  API docs:    {base}/api/docs/\n"
        f"Press Ctrl-C to stop the web server and the worker.\n",
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


if __name__ == "__main__":
    sys.exit(main())
