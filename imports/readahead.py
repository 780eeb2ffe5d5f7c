"""Reading and validating a product file in a second process, one chunk ahead of the writer.

Why a process: reading the sheet and validating its rows is pure Python (~15 µs a row), and so is much
of writing on SQLite, whose sqlite3 calls give the GIL back for every row, so a reader *thread* stalls
the writer instead of helping it (measured). A child process uses the machine's second core: while the
job writes chunk n in its transaction, the child reads and validates chunk n+1. The child needs no Django
and no database; it streams pickled chunks over its stdout pipe, which also paces it (it blocks when the
job has not taken the previous chunk yet, so at most about two chunks are in flight).

The parent (`ChildReader`) yields the same chunks as services._chunks: (row number, clean dict,
problems, digest), in row order. A problem with the file is sent as a message and raised as PermanentError in the job,
as the in-process reader does. If the job ends early (cancel, error, a killed worker) the child is killed
or gets a broken pipe and exits."""

import gc
import json
import os
import pickle
import struct
import subprocess
import sys
import tempfile
from decimal import Decimal
from operator import itemgetter
from pathlib import Path

HEADER = struct.Struct("<Q")
PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)


class ChildFailed(Exception):
    """The child reported a problem with the file (`kind` 'file' or 'damaged') or died."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


def _peak_rss_mb():
    """This process's own peak RSS (VmHWM). Not ru_maxrss: after fork+exec that also counts the parent's
    memory at the fork."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


# -- the child --------------------------------------------------------------------------------------------
def _child_main():
    from .columns import product_coercer
    from .readers import open_table
    from .xlsx import XlsxError, ZipLimits

    gc.disable()  # no reference cycles here; cyclic GC would only re-scan the rows in flight
    spec = json.loads(sys.stdin.readline())
    out = sys.stdout.buffer

    def send(item):
        data = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
        out.write(HEADER.pack(len(data)))
        out.write(data)
        out.flush()

    positions = spec["positions"]
    coerce = product_coercer(positions, flat=True)
    chunk_rows = spec["chunk_rows"]
    last = spec["start_after"]
    try:
        table = open_table(spec["path"], spec["format"], ZipLimits(**spec["limits"]))
    except XlsxError as exc:
        send(("error", "file", str(exc)))
        return
    try:
        valid, bad = [], []
        append = valid.append
        size = 0
        try:
            for number, values in table.rows(start_after=max(spec["start_after"], spec["header_row"])):
                clean, problems, digest = coerce(values)
                last = number
                if problems:
                    bad.append((number, clean, problems))
                else:
                    # Tuples of str and int, the price as text: they cross the pipe ~4x cheaper than dicts
                    # with Decimals (measured); the parent rebuilds the dicts.
                    append((number, clean, digest))
                size += 1
                if size >= chunk_rows:
                    send(("rows", valid, bad))
                    valid, bad, size = [], [], 0
                    append = valid.append
        except XlsxError as exc:
            send(("error", "file", str(exc)))
            return
        except (ValueError, IndexError, UnicodeDecodeError) as exc:
            send(("error", "damaged", f"The sheet is damaged after row {last}: {exc}. Save it again from Excel "
                                      "or LibreOffice and upload the new copy."))
            return
        if size:
            send(("rows", valid, bad))
        send(("end", _peak_rss_mb()))
    except BrokenPipeError:  # the job stopped reading: nothing left to do
        pass
    finally:
        table.close()


# -- the parent -------------------------------------------------------------------------------------------
class ChildReader:
    """Start the child for one run of an import; iterate for the chunks; close() always."""

    def __init__(self, path, file_format, limits, start_after, header_row, positions, chunk_rows):
        self._stderr = tempfile.TemporaryFile()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [PACKAGE_ROOT, os.environ.get("PYTHONPATH")])))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "imports.readahead"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._stderr, env=env, cwd=PACKAGE_ROOT, close_fds=True,
        )
        self.peak_rss_mb = None
        spec = {"path": str(path), "format": file_format, "limits": limits, "start_after": start_after,
                "header_row": header_row, "positions": positions, "chunk_rows": chunk_rows}
        self.process.stdin.write(json.dumps(spec).encode() + b"\n")
        self.process.stdin.close()

    def _read(self, size):
        data = self.process.stdout.read(size)
        if len(data) != size:
            self.process.wait()
            self._stderr.seek(0)
            detail = self._stderr.read().decode("utf-8", "replace").strip().splitlines()
            raise ChildFailed("died", f"The file reader process stopped (exit status {self.process.returncode})"
                                      + (f": {detail[-1]}" if detail else ""))
        return data

    def __iter__(self):
        while True:
            (size,) = HEADER.unpack(self._read(HEADER.size))
            message = pickle.loads(self._read(size))
            if message[0] == "end":
                self.peak_rss_mb = message[1]
                return
            if message[0] == "error":
                raise ChildFailed(message[1], message[2])
            _, valid, bad = message
            chunk = [(number, {"code": code, "name": name, "brand": brand, "category": category,
                               "description": description, "price": Decimal(price), "stock": stock,
                               "barcode": barcode}, (), digest)
                     for number, (code, name, brand, category, description, price, stock, barcode), digest in valid]
            if bad:
                chunk.extend((number, clean, problems, None) for number, clean, problems in bad)
                chunk.sort(key=itemgetter(0))
            yield chunk

    def close(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.process.stdout.close()
        self._stderr.close()


if __name__ == "__main__":
    _child_main()
