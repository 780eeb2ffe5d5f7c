"""Reading and validating a product file in reader processes, ahead of the writer.

Why a process: reading the sheet and validating its rows is pure Python (~15 µs a row), and so is much
of writing on SQLite, whose sqlite3 calls give the GIL back for every row, so a reader *thread* stalls
the writer instead of helping it (measured). Child processes use the machine's other cores: while the
job writes chunk n in its transaction, they read and validate the next chunks (several readers share
the sheet, see ChildReader). A reader needs no Django and no database; it streams pickled chunks over
its stdout pipe, which also paces it (it blocks when the job has not taken its previous chunk yet).

The parent (`ChildReader`) yields columns.Chunk, as services._chunks does, in row order, one run of
chunk-size row numbers each. A problem with the file is sent as a message and raised as PermanentError
in the job, as the in-process reader does. If the job ends early (cancel, error, a killed worker) the
readers are killed or exit on the broken pipe."""

import gc
import json
import os
import pickle
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

from .columns import Chunk

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
    coerce = product_coercer(positions)
    span = spec["chunk_rows"]
    first = spec["header_row"] + 1  # runs start after the header, so they match the in-process chunks
    share = (spec["share"], spec["readers"], span, first)
    try:
        table = open_table(spec["path"], spec["format"], ZipLimits(**spec["limits"]))
    except XlsxError as exc:
        send(("error", 0, "file", str(exc)))
        return
    # A chunk is the rows of one run of `span` row numbers, tagged with the run's index: the parent merges
    # the readers' chunks by that tag. A problem is tagged with the run of the last row read past: the
    # reader of the damaged run finds it (the others skip that run unparsed), and the parent raises it
    # after the chunks of the runs before it.
    reader = table.reader
    try:
        valid, bad = [], []  # bad: (row number, column, value, message) per problem
        append = valid.append
        run = None
        bad_rows = last = 0

        def flush():
            if valid or bad:
                send(("rows", run, valid, bad, len(valid) + bad_rows, last))

        try:
            for number, values in table.rows(start_after=max(spec["start_after"], spec["header_row"]),
                                             share=share):
                if (number - first) // span != run:
                    flush()
                    valid, bad = [], []
                    append = valid.append
                    bad_rows = 0
                    run = (number - first) // span
                last = number
                clean, problems, digest = coerce(values)
                if problems:
                    bad.extend((number, column, value, message) for column, value, message in problems)
                    bad_rows += 1
                else:
                    # Tuples of str and int, the price as text: they cross the pipe ~4x cheaper than dicts
                    # with Decimals (measured), and the job uses them as they come.
                    append((number, clean, digest))
        except XlsxError as exc:
            flush()
            send(("error", (reader.last_row - first) // span, "file", str(exc)))
            return
        except (ValueError, IndexError, UnicodeDecodeError) as exc:
            flush()
            send(("error", (reader.last_row - first) // span, "damaged",
                  f"The sheet is damaged after row {reader.last_row}: {exc}. Save it again from Excel or "
                  "LibreOffice and upload the new copy."))
            return
        flush()
        send(("end", None, _peak_rss_mb()))
    except BrokenPipeError:  # the job stopped reading: nothing left to do
        pass
    finally:
        table.close()


# -- the parent -------------------------------------------------------------------------------------------
class _Reader:
    """One reader process and its pipe."""

    def __init__(self, spec, env):
        self.stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "imports.readahead"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.stderr, env=env, cwd=PACKAGE_ROOT, close_fds=True,
        )
        self.process.stdin.write(json.dumps(spec).encode() + b"\n")
        self.process.stdin.close()

    def _read(self, size):
        data = self.process.stdout.read(size)
        if len(data) != size:
            self.process.wait()
            self.stderr.seek(0)
            detail = self.stderr.read().decode("utf-8", "replace").strip().splitlines()
            raise ChildFailed("died", f"The file reader process stopped (exit status {self.process.returncode})"
                                      + (f": {detail[-1]}" if detail else ""))
        return data

    def message(self):
        (size,) = HEADER.unpack(self._read(HEADER.size))
        return pickle.loads(self._read(size))

    def close(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.process.stdout.close()
        self.stderr.close()


class ChildReader:
    """Start the reader processes for one run of an import; iterate for the chunks; close() always.

    With `readers` > 1 the processes share the sheet: each converts and validates only the rows of its
    own runs of `chunk_rows` row numbers (reader k: runs k, k + n, ...) and skips the others' runs
    (XlsxReader.rows), so a re-import, bound by reading, is spread over the cores. Each chunk comes
    tagged with its run, and this merges them back into row order."""

    def __init__(self, path, file_format, limits, start_after, header_row, positions, chunk_rows, readers=1):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [PACKAGE_ROOT, os.environ.get("PYTHONPATH")])))
        self.peak_rss_mb = None
        self._readers = []
        try:
            for share in range(readers):
                spec = {"path": str(path), "format": file_format, "limits": limits, "start_after": start_after,
                        "header_row": header_row, "positions": positions, "chunk_rows": chunk_rows,
                        "share": share, "readers": readers}
                self._readers.append(_Reader(spec, env))
        except BaseException:
            self.close()
            raise

    def __iter__(self):
        # The next message of each reader (read only when the chunk before it has been taken, so that no
        # chunk waits for another reader's next one); each reader's runs come in increasing order.
        heads = [None] * len(self._readers)
        while True:
            for k, message in enumerate(heads):
                if message is None:
                    heads[k] = self._readers[k].message()
            waiting = [(message[1], message[0] == "error", k) for k, message in enumerate(heads)
                       if message[0] != "end"]
            if not waiting:
                peaks = [message[2] for message in heads if message[2] is not None]
                self.peak_rss_mb = max(peaks) if peaks else None
                return
            _, _, k = min(waiting)  # the earliest run; at a tie (a damaged sheet) rows before the problem
            message, heads[k] = heads[k], None
            if message[0] == "error":
                raise ChildFailed(message[2], message[3])
            _, _, valid, problems, rows, last_row = message
            yield Chunk(valid, problems, rows, last_row)

    def close(self):
        for reader in self._readers:
            reader.close()


if __name__ == "__main__":
    _child_main()
