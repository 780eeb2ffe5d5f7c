"""Uploaded tables (xlsx or CSV) behind one interface: header(), rows(start_after), estimated_rows().

Both stream: neither ever holds the sheet. Both raise XlsxError (a readable problem with the file)."""

import codecs
import csv
from pathlib import Path

from .xlsx import XlsxError, XlsxReader, ZipLimits

FORMATS = ("xlsx", "csv")
SNIFF_BYTES = 64 << 10
CSV_DELIMITERS = ",;\t|"
ZIP_MAGIC = b"PK\x03\x04"


def format_of(name):
    suffix = Path(name or "").suffix.lower().lstrip(".")
    return suffix if suffix in FORMATS else None


class XlsxTable:
    format = "xlsx"

    def __init__(self, path, limits):
        self.reader = XlsxReader(path, limits)
        self.sheet_name = self.reader.sheet_name

    def header(self):
        return self.reader.header()

    def rows(self, start_after=0, stop_after=None, only=None, share=None):
        return self.reader.rows(start_after=start_after, stop_after=stop_after, only=only, share=share)

    def estimated_rows(self):
        """Data rows (the header excluded): the sheet's declared dimension, else a count of row tags."""
        last = self.reader.dimension_rows()
        if last is None or last <= 1:
            last = self.reader.count_rows()
        return max(0, last - 1)

    def close(self):
        self.reader.close()


class CsvTable:
    format = "csv"
    sheet_name = None

    def __init__(self, path):
        self.path = Path(path)
        with open(self.path, "rb") as handle:
            head = handle.read(SNIFF_BYTES)
        if not head.strip():
            raise XlsxError("The file is empty. Upload a CSV file with a header row and data rows.")
        if head.startswith(ZIP_MAGIC):
            raise XlsxError("The file is named .csv but is a zip archive (probably an Excel workbook). "
                            "Rename it to .xlsx or save it as CSV.")
        if b"\x00" in head:
            raise XlsxError("The file is not CSV text (it contains binary data). Save the sheet as "
                            "'CSV UTF-8' and upload that file.")
        self.encoding = "utf-8-sig"
        try:
            codecs.getincrementaldecoder("utf-8-sig")().decode(head, final=False)
        except UnicodeDecodeError:
            # Excel's plain "CSV" on Windows writes cp1252; anything decodes as cp1252, so say so.
            self.encoding = "cp1252"
        self.warnings = []
        if self.encoding == "cp1252":
            self.warnings.append("The file is not UTF-8; it was read as Windows-1252 (Western European). "
                                 "Save as 'CSV UTF-8' if characters look wrong.")
        text = head.decode(self.encoding, errors="replace")
        first_line = text.splitlines()[0] if text.splitlines() else ""
        counts = {d: first_line.count(d) for d in CSV_DELIMITERS}
        self.delimiter = max(counts, key=counts.get) if max(counts.values()) else ","

    def _reader(self):
        handle = open(self.path, "r", encoding=self.encoding, newline="", errors="strict")
        return handle, csv.reader(handle, delimiter=self.delimiter, strict=False)

    def header(self):
        handle, reader = self._reader()
        try:
            for number, values in enumerate(reader, start=1):
                if any(v.strip() for v in values):
                    return number, values
            return None
        except (csv.Error, UnicodeDecodeError) as exc:
            raise XlsxError(f"The CSV header could not be read: {exc}.") from None
        finally:
            handle.close()

    def rows(self, start_after=0, stop_after=None, only=None):
        """(record number, values); the header is record 1, as the row numbers of a spreadsheet. `only`
        is accepted for the xlsx reader's sake (CSV fields cost nothing to convert)."""
        handle, reader = self._reader()
        try:
            number = 0
            for values in reader:
                number += 1
                if number <= start_after:
                    continue
                if stop_after is not None and number > stop_after:
                    return
                if any(v.strip() for v in values):
                    yield number, values
        except UnicodeDecodeError as exc:
            raise XlsxError(f"Record {number + 1} is not valid {self.encoding} text ({exc.reason}). "
                            "Save the file as 'CSV UTF-8' and upload it again.") from None
        except csv.Error as exc:
            raise XlsxError(f"Record {number + 1} of the CSV file cannot be read: {exc}.") from None
        finally:
            handle.close()

    def estimated_rows(self):
        lines = 0
        last = b"\n"
        with open(self.path, "rb") as handle:
            while block := handle.read(1 << 20):
                lines += block.count(b"\n")
                last = block[-1:]
        if last != b"\n":
            lines += 1
        return max(0, lines - 1)

    def close(self):
        pass


def open_table(path, file_format, limits: ZipLimits | None = None):
    if file_format == "xlsx":
        return XlsxTable(path, limits or ZipLimits())
    if file_format == "csv":
        return CsvTable(path)
    raise XlsxError(f"Unsupported file type {file_format!r}: upload an .xlsx or .csv file.")

