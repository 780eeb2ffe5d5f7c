"""A streaming, constant-memory reader for the first worksheet of an uploaded .xlsx file.

Why not openpyxl: on a 700k-row sheet its read-only mode needs ~100 s and holds the shared strings as
Python objects (~370 MB); an expat parse still costs five Python callbacks per cell (~16 s). Here the
sheet XML is tokenised by compiled regular expressions over the decompressed bytes, one row element at a
time, and shared strings live in a compact table of UTF-8 blocks (a few bytes of overhead per string, not
one Python object each). Values match openpyxl's `data_only=True` reading: numbers as int/float, dates by
the cell's number format, booleans, cached formula results, shared and inline (rich) strings.

Regular expressions are enough because SpreadsheetML's sheet and string parts are flat, machine-written
XML; anything they cannot handle safely is refused with a readable message instead of being guessed at:
a DTD or entity declaration (so no entity is ever expanded), CDATA sections or comments in the data,
an encoding other than UTF-8. Small structural parts (workbook, relationships, styles) go through
defusedxml. The zip container is checked (declared sizes, inflation ratio, entry count, encryption)
before any part is inflated.
"""

import os
import posixpath
import re
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import datetime

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from openpyxl.styles.numbers import BUILTIN_FORMATS, is_date_format, is_timedelta_format
from openpyxl.utils.datetime import CALENDAR_MAC_1904, CALENDAR_WINDOWS_1900, from_excel


class XlsxError(Exception):
    """The file cannot be read as a spreadsheet; the message says why, in words for the uploader."""


@dataclass(frozen=True)
class ZipLimits:
    max_entry_bytes: int = 1 << 30  # one inflated part
    max_total_bytes: int = 2 << 30  # all parts together
    max_ratio: float = 100.0  # inflated / compressed, as Apache POI
    ratio_exempt_bytes: int = 1 << 20  # small parts may compress better (repetitive XML)
    max_entries: int = 10_000


MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
STRICT_NS = "http://purl.oclc.org/ooxml/spreadsheetml/main"
REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
DOC_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
STRICT_DOC_REL_NS = "http://purl.oclc.org/ooxml/officeDocument/relationships"

CHUNK = 1 << 20

# An optional namespace prefix, as some exporters write <x:row>, <x:c>.
_P = rb"(?:[A-Za-z_][\w.-]*:)?"
ROW_RE = re.compile(rb"<" + _P + rb"row\b([^>]*?)(/?)>", re.S)
ROW_START_RE = re.compile(rb"<" + _P + rb"row[\s>/]")
ROW_OVERLAP = 64
ROW_END_RE = re.compile(rb"</" + _P + rb"row\s*>")
ROW_NUMBER_RE = re.compile(rb"""\sr\s*=\s*["'](\d+)["']""")
# One cell: its column letters, type and style (attributes in any order), and its content.
CELL_RE = re.compile(
    rb"<" + _P + rb"c\b"
    rb"""(?:(?=[^>]*?\sr\s*=\s*["']([A-Za-z]+)\d*["']))?"""
    rb"""(?:(?=[^>]*?\st\s*=\s*["'](\w+)["']))?"""
    rb"""(?:(?=[^>]*?\ss\s*=\s*["'](\d+)["']))?"""
    rb"[^>]*?(?:/>|>(.*?)</" + _P + rb"c\s*>)",
    re.S,
)
VALUE_RE = re.compile(rb"<" + _P + rb"v(?:\s[^>]*)?>([^<]*)</" + _P + rb"v\s*>")
EMPTY_VALUE_RE = re.compile(rb"<" + _P + rb"v\s*/>")
TEXT_RE = re.compile(rb"<" + _P + rb"t(?:\s[^>]*)?>([^<]*)</" + _P + rb"t\s*>")
PHONETIC_RE = re.compile(rb"<" + _P + rb"rPh\b.*?</" + _P + rb"rPh\s*>", re.S)
SI_RE = re.compile(rb"<" + _P + rb"si\b[^>]*?(?:/>|>(.*?)</" + _P + rb"si\s*>)", re.S)
PLAIN_SI_RE = re.compile(rb'<si><t(?:\s+xml:space="preserve")?>([^<]*)</t></si>')
SIMPLE_SI_RE = re.compile(rb"<" + _P + rb"t(?:\s[^>]*)?>([^<]*)</" + _P + rb"t\s*>\Z")
DIMENSION_RE = re.compile(rb"""<""" + _P + rb"""dimension\b[^>]*?\sref\s*=\s*["']([A-Za-z]*\d*)(?::[A-Za-z]*(\d+))?["']""")
SHEETDATA_RE = re.compile(rb"<" + _P + rb"sheetData\b[^>]*?(/?)>")
ENTITY_RE = re.compile(rb"&(?:(lt|gt|amp|quot|apos)|#(\d+)|#[xX]([0-9a-fA-F]+));")
XML_DECL_RE = re.compile(rb"""\A(?:\xef\xbb\xbf)?\s*<\?xml[^>]*?encoding\s*=\s*["']([^"']+)["']""")
UNSAFE_MARKUP = (b"<!DOCTYPE", b"<!ENTITY", b"<!ELEMENT", b"<!ATTLIST")
NAMED = {b"lt": "<", b"gt": ">", b"amp": "&", b"quot": '"', b"apos": "'"}


def _entity(match):
    name, dec, hexa = match.groups()
    if name:
        return NAMED[name].encode()
    code = int(dec) if dec else int(hexa, 16)
    # NUL separates table entries and is no XML character anyway; out-of-range codes are not either.
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return "\ufffd".encode()
    return chr(code).encode()


def text_of(raw: bytes) -> str:
    """The text of escaped XML character data."""
    if b"&" in raw:
        raw = ENTITY_RE.sub(_entity, raw)
    return raw.decode("utf-8")


def rich_text(inner: bytes) -> str:
    """The text of an <si> or <is> element: its <t> runs, without phonetic (<rPh>) runs."""
    if b"<" not in inner:
        return ""
    if b"rPh" in inner:
        inner = PHONETIC_RE.sub(b"", inner)
    return "".join(text_of(part) for part in TEXT_RE.findall(inner))


def column_index(letters: bytes) -> int:
    """0-based index of column letters (A → 0, AA → 26)."""
    index = 0
    for char in letters.upper():
        index = index * 26 + (char - 64)
    return index - 1


class SharedStrings:
    """The shared strings table, in blocks of NUL-separated, still-escaped UTF-8 text kept in a temporary
    file, not in memory.

    A 700k-row catalogue has ~2.1M unique strings; as Python objects they would take ~250 MB, as UTF-8
    ~95 MB. Cells use the table nearly in order (Excel numbers strings as it meets them), so a handful of
    decoded blocks in a small cache serve almost every lookup, and the repeated strings (brands,
    categories) sit in early blocks that stay cached because they are hot. The file lives in the page
    cache, which the kernel can reclaim, instead of the process's memory; compressing the blocks in
    memory instead cost ~0.9 s a table (measured)."""

    BLOCK_BITS = 14
    BLOCK = 1 << BLOCK_BITS
    MASK = BLOCK - 1
    CACHED_BLOCKS = 6

    def __init__(self):
        self._blocks = []  # (offset, length) of each block in the file
        self._file = None
        self._size = 0
        self._pending = []
        self._cache = {}  # block index -> list[str], most recently used last
        self.feed = None  # while read lazily: the parser, advanced one input block at a time
        self.count = 0
        self.raw_bytes = 0

    def append(self, raw: bytes, rich: bool = False):
        """Add one entry: the escaped XML text of a plain <si><t>, or the inner XML of a rich one."""
        if rich:
            raw = xml_escape(rich_text(raw)).encode("utf-8")
        self._pending.append(raw)
        self.count += 1
        if len(self._pending) == self.BLOCK:
            self._seal()

    def extend(self, plain_entries):
        """Add many plain entries (escaped text of <si><t>) at once."""
        while plain_entries:
            room = self.BLOCK - len(self._pending)
            self._pending.extend(plain_entries[:room])
            self.count += min(room, len(plain_entries))
            plain_entries = plain_entries[room:]
            if len(self._pending) == self.BLOCK:
                self._seal()

    def _seal(self):
        if self._pending:
            joined = b"\0".join(self._pending)
            self.raw_bytes += len(joined)
            if self._file is None:
                self._file = tempfile.TemporaryFile(prefix="jobsite-strings-", buffering=0)
            self._file.write(joined)
            self._blocks.append((self._size, len(joined)))
            self._size += len(joined)
            self._pending = []

    def finish(self):
        self._seal()

    def close(self):
        if self._file is not None:
            self._file.close()
            self._file = None

    def __len__(self):
        return self.count

    def _load(self, block):
        if block < 0:
            raise IndexError(block << self.BLOCK_BITS)
        while block >= len(self._blocks) and self.feed is not None:
            try:  # a lazily read table: parse on until the block is complete
                next(self.feed)
            except StopIteration:
                self.feed = None
        if block >= len(self._blocks):
            raise IndexError(block << self.BLOCK_BITS)
        offset, length = self._blocks[block]
        data = os.pread(self._file.fileno(), length, offset)
        if b"&" in data:
            data = ENTITY_RE.sub(_entity, data)
        strings = data.decode("utf-8").split("\0")
        if len(self._cache) >= self.CACHED_BLOCKS:
            del self._cache[next(iter(self._cache))]
        self._cache[block] = strings
        return strings

    def __getitem__(self, index: int) -> str:
        block = index >> self.BLOCK_BITS
        strings = self._cache.get(block)
        if strings is None:
            strings = self._load(block)
        elif block:  # keep the hot block at the young end (block 0 is hot by construction)
            del self._cache[block]
            self._cache[block] = strings
        return strings[index & self.MASK]

    def getter(self):
        """A fast `table[index]` for the row reader (no LRU bookkeeping: rows use the table nearly in
        order, and a block evicted too early is just decompressed again)."""
        cache, load, bits, mask = self._cache, self._load, self.BLOCK_BITS, self.MASK

        def get(index):
            strings = cache.get(index >> bits)
            if strings is None:
                strings = load(index >> bits)
            return strings[index & mask]
        return get


def xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _check_prolog(head: bytes, part: str):
    """Refuse markup that could declare or expand entities, and encodings we do not decode."""
    for marker in UNSAFE_MARKUP:
        if marker in head:
            raise XlsxError(
                f"The part {part} of the workbook declares a DTD or XML entities, which spreadsheets never "
                "need and which can be used to attack the server. Save the file again from Excel or "
                "LibreOffice and upload that copy."
            )
    declared = XML_DECL_RE.match(head)
    if declared and declared.group(1).lower().replace(b"_", b"-") not in (b"utf-8", b"utf8"):
        raise XlsxError(
            f"The part {part} is encoded as {declared.group(1).decode(errors='replace')}; only UTF-8 "
            "spreadsheets are supported. Save the file again as .xlsx from Excel or LibreOffice."
        )


def _refuse_unsupported(data: bytes, part: str):
    # A search for "!" runs at memchr speed; one for "<!..." stops at every "<" of the markup (~14x slower
    # on sheet XML, measured), so it runs only when a block holds a "!" at all.
    if b"!" in data and (b"<![CDATA[" in data or b"<!--" in data):
        raise XlsxError(
            f"The part {part} uses XML constructs (CDATA or comments) that spreadsheet applications do "
            "not write; this file was not saved by a spreadsheet program. Save it again as .xlsx."
        )


class XlsxReader:
    """Reads the first worksheet of an xlsx file. Opening checks the container; nothing big is read yet."""

    def __init__(self, source, limits: ZipLimits | None = None):
        self.limits = limits or ZipLimits()
        self.last_row = 0
        try:
            self.zip = zipfile.ZipFile(source)
        except zipfile.BadZipFile:
            raise XlsxError("The file is not a valid .xlsx file (it is not a zip archive). "
                            "Save it as an Excel workbook (.xlsx) and upload it again.") from None
        except OSError as exc:
            raise XlsxError(f"The file could not be read: {exc}.") from None
        try:
            self._check_zip()
            self._names = {info.filename for info in self.zip.infolist()}
            self.epoch = CALENDAR_WINDOWS_1900
            self.sheet_name, self.sheet_path, self.strings_path, self.styles_path = self._locate_parts()
            self.date_styles, self.timedelta_styles = self._read_styles()
        except BaseException:
            self.zip.close()
            raise
        self._strings = None

    def close(self):
        if self._strings is not None:
            if self._strings.feed is not None:
                self._strings.feed.close()  # (the feed and its table refer to each other)
                self._strings.feed = None
            self._strings.close()
        self.zip.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- container ----------------------------------------------------------------------------------
    def _check_zip(self):
        infos = self.zip.infolist()
        limits = self.limits
        if len(infos) > limits.max_entries:
            raise XlsxError(f"The archive has {len(infos)} parts; a spreadsheet has at most "
                            f"{limits.max_entries}. This is not a normal .xlsx file.")
        total = 0
        for info in infos:
            if info.flag_bits & 0x1:
                raise XlsxError("The workbook is encrypted or password-protected. Remove the password "
                                "in Excel (File > Info > Protect Workbook) and upload it again.")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise XlsxError(f"The part {info.filename} uses an unsupported compression method. "
                                "Save the file again as .xlsx from Excel or LibreOffice.")
            if info.file_size > limits.max_entry_bytes:
                raise XlsxError(
                    f"The part {info.filename} would inflate to {info.file_size:,} bytes, more than the "
                    f"limit of {limits.max_entry_bytes:,}. Split the spreadsheet into smaller files."
                )
            total += info.file_size
            if info.file_size > limits.ratio_exempt_bytes:
                ratio = info.file_size / max(1, info.compress_size)
                if ratio > limits.max_ratio:
                    raise XlsxError(
                        f"The part {info.filename} inflates {ratio:.0f} times its compressed size (the "
                        f"limit is {limits.max_ratio:.0f}), which is typical of a zip bomb, not of a "
                        "spreadsheet. The file was refused."
                    )
        if total > limits.max_total_bytes:
            raise XlsxError(f"The workbook would inflate to {total:,} bytes in all, more than the limit of "
                            f"{limits.max_total_bytes:,}. Split the spreadsheet into smaller files.")

    def _read_small(self, name):
        """Parse a small structural part with defusedxml (no DTDs, no entities)."""
        info = self.zip.getinfo(name)
        if info.file_size > 50 << 20:
            raise XlsxError(f"The part {name} is implausibly large ({info.file_size:,} bytes).")
        data = self.zip.read(name)
        try:
            return SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
        except DefusedXmlException:
            raise XlsxError(
                f"The part {name} of the workbook declares a DTD or XML entities, which spreadsheets never "
                "need and which can be used to attack the server. Save the file again from Excel or "
                "LibreOffice and upload that copy."
            ) from None
        except SafeET.ParseError as exc:
            raise XlsxError(f"The part {name} of the workbook is not valid XML ({exc}). "
                            "The file may be damaged; save it again and upload the new copy.") from None

    def _rels(self, part):
        folder, base = posixpath.split(part)
        rels_name = posixpath.join(folder, "_rels", base + ".rels")
        found = {}
        if rels_name not in self._names:
            return found
        for rel in self._read_small(rels_name):
            target = rel.get("Target", "")
            if rel.get("TargetMode") == "External":
                continue
            path = target.lstrip("/") if target.startswith("/") else posixpath.normpath(
                posixpath.join(folder, target))
            found[rel.get("Id")] = (rel.get("Type", "").rsplit("/", 1)[-1], path)
        return found

    def _locate_parts(self):
        root_rels = self._rels("")
        workbook = next((path for kind, path in root_rels.values() if kind == "officeDocument"), None)
        if workbook is None and "xl/workbook.xml" in self._names:
            workbook = "xl/workbook.xml"
        if workbook is None or workbook not in self._names:
            raise XlsxError("The file is a zip archive but not an Excel workbook (no workbook part). "
                            "Save it as .xlsx from Excel or LibreOffice and upload it again.")
        tree = self._read_small(workbook)
        ns = STRICT_NS if tree.tag == f"{{{STRICT_NS}}}workbook" else MAIN_NS
        rel_ns = STRICT_DOC_REL_NS if ns == STRICT_NS else DOC_REL_NS
        props = tree.find(f"{{{ns}}}workbookPr")
        if props is not None and props.get("date1904", "0").lower() in ("1", "true"):
            self.epoch = CALENDAR_MAC_1904
        rels = self._rels(workbook)
        sheet_name = sheet_path = None
        for sheet in tree.iter(f"{{{ns}}}sheet"):
            kind, path = rels.get(sheet.get(f"{{{rel_ns}}}id"), (None, None))
            if kind == "worksheet" and path in self._names:
                sheet_name, sheet_path = sheet.get("name"), path
                break
        if sheet_path is None:
            raise XlsxError("The workbook has no worksheet. Put the data on the first sheet and upload again.")
        strings = next((p for k, p in rels.values() if k == "sharedStrings" and p in self._names), None)
        styles = next((p for k, p in rels.values() if k == "styles" and p in self._names), None)
        return sheet_name, sheet_path, strings, styles

    def _read_styles(self):
        dates, deltas = set(), set()
        if not self.styles_path:
            return dates, deltas
        tree = self._read_small(self.styles_path)
        ns = tree.tag[: tree.tag.index("}") + 1] if tree.tag.startswith("{") else ""
        custom = {}
        formats = tree.find(f"{ns}numFmts")
        if formats is not None:
            for fmt in formats.findall(f"{ns}numFmt"):
                try:
                    custom[int(fmt.get("numFmtId"))] = fmt.get("formatCode", "")
                except (TypeError, ValueError):
                    continue
        xfs = tree.find(f"{ns}cellXfs")
        if xfs is None:
            return dates, deltas
        for index, xf in enumerate(xfs.findall(f"{ns}xf")):
            try:
                fmt_id = int(xf.get("numFmtId", 0))
            except ValueError:
                continue
            code = custom.get(fmt_id) or BUILTIN_FORMATS.get(fmt_id)
            if code and is_date_format(code):
                dates.add(index)
                if is_timedelta_format(code):
                    deltas.add(index)
        return dates, deltas

    # -- streaming ----------------------------------------------------------------------------------
    def _stream(self, name):
        """The decompressed bytes of a part, in chunks, after checking its prolog."""
        with self.zip.open(name) as handle:
            first = handle.read(CHUNK)
            # A DTD can only come before the root element: the prolog is all there is to check.
            _check_prolog(first[:_root_element_start(first)], name)
            yield first
            while True:
                block = handle.read(CHUNK)
                if not block:
                    return
                yield block

    def shared_strings(self, upto=None, lazy=False) -> SharedStrings:
        """The shared strings table; with `upto`, only as far as that index (for the header row). With
        `lazy`, the table is read on demand, as far as the largest index looked up so far: a sheet saved
        by Excel or LibreOffice numbers its strings in order of first use, so rows can be read while the
        table is still being parsed instead of after it (~2 s for 2.1M strings)."""
        if self._strings is not None and (upto is None or self._strings.count > upto):
            return self._strings
        table = SharedStrings()
        feed = self._feed_strings(table)
        if lazy and upto is None:
            table.feed = feed
            self._strings = table
            return table
        for _ in feed:
            if upto is not None and table.count > upto:
                break
        table.finish()
        if upto is None:
            self._strings = table
        return table

    def _feed_strings(self, table):
        """Parse sharedStrings.xml into `table`, one inflated block per step; seals the table at the end."""
        if self.strings_path:
            buffer = b""
            for block in self._stream(self.strings_path):
                buffer += block
                _refuse_unsupported(buffer, self.strings_path)
                cut = _last_end_tag(buffer, b"si>")
                if not cut:
                    continue
                # The usual table is all plain <si><t>..</t></si>: take a whole block with one findall. Each
                # match holds four "<", so when the block has no other "<" it is nothing but those entries.
                plain = PLAIN_SI_RE.findall(buffer, 0, cut)
                if buffer.count(b"<", 0, cut) == 4 * len(plain):
                    table.extend(plain)
                    consumed = cut
                else:
                    consumed = 0
                    for match in SI_RE.finditer(buffer, 0, cut):
                        inner = match.group(1) or b""
                        simple = SIMPLE_SI_RE.match(inner)
                        if simple:
                            table.append(simple.group(1))
                        else:
                            table.append(inner, rich=True)
                        consumed = match.end()
                buffer = buffer[consumed:]
                yield
        table.finish()

    def dimension_rows(self):
        """The last row number the sheet declares in <dimension>, or None when it does not say."""
        with self.zip.open(self.sheet_path) as handle:
            head = handle.read(64 << 10)
        match = DIMENSION_RE.search(head)
        if match and match.group(2):
            return int(match.group(2))
        return None

    def count_rows(self):
        """Row elements in the sheet, counted by scanning the decompressed part (no parsing)."""
        count = 0
        data = b""
        for block in self._stream(self.sheet_path):
            data = data[-ROW_OVERLAP:] + block
            # A tag cut by the block boundary lies in the overlap and is counted with the next block.
            count += sum(1 for m in ROW_START_RE.finditer(data) if m.start() < len(data) - ROW_OVERLAP)
        count += sum(1 for m in ROW_START_RE.finditer(data) if m.start() >= len(data) - ROW_OVERLAP)
        return count

    def rows(self, strings=None, start_after=0, stop_after=None, only=None, share=None):
        """Yield (row_number, values) for every non-empty row, values indexed by column (A = 0).

        Rows numbered up to `start_after` are skipped without converting their cells (resuming); the
        rows stop after `stop_after`. With `only` (column indexes), rows of the learned layout convert
        just those cells (the others are None): resuming re-reads only the code column. With `share`
        (index, count, span, first), only the rows of every count-th run of `span` row numbers from row
        `first`, starting with run `index`, are converted: `count` processes read one sheet together
        (imports/readahead.py).

        Speed: most sheets repeat one row layout (same columns, same types and styles). A regex for a
        whole row of that layout is learned from a row read the general way, and rows that match it are
        read with one match and one converter per cell; any other row takes the general path."""
        strings = self.shared_strings(lazy=True) if strings is None else strings
        dates, deltas, epoch = self.date_styles, self.timedelta_styles, self.epoch
        share_index, share_count, span, first = share if share is not None else (0, 1, 1, 0)
        self.last_row = start_after  # the last row read past (converted or skipped): where a problem lies

        wanted_to = -1  # the last row of the run of wanted rows the last wanted row fell in

        def wanted(number):
            """Does this reader convert row `number`? For rows past `wanted_to`; moves it on."""
            nonlocal wanted_to
            if number <= start_after:
                return False
            run = (number - first) // span
            if run % share_count != share_index:
                return False
            wanted_to = first + (run + 1) * span - 1 if share is not None else float("inf")
            return True

        def wanted_after(number):
            """The first row number after `number` that this reader converts."""
            target = max(number, start_after) + 1
            run = (target - first) // span
            ahead = (share_index - run) % share_count
            return target if not ahead else first + (run + ahead) * span

        def skip(data, position, cut, number):
            """After row `number`, which this reader does not convert: past the rows it does not want that
            lie in data[position:cut]. (new position, offset before which no lookup is worth trying
            again), or None when it wants no row up to `stop_after`."""
            target = wanted_after(number)
            if stop_after is not None and target > stop_after:
                return None
            at, exact = _skip_rows(data, position, cut, target)
            if at <= position:
                return position, cut
            if exact:
                self.last_row = target - 1
            return at, 0

        buffer = b""
        row_number = 0
        in_data = False
        template = None
        misses = 0
        blocks = self._stream(self.sheet_path)
        finished = False
        while not finished:
            block = next(blocks, None)
            if block is None:
                finished = True
            else:
                buffer += block
            if not in_data:
                found = SHEETDATA_RE.search(buffer)
                if not found:
                    buffer = buffer[-256:]  # keep a tag that may be split over two blocks
                    continue
                if found.group(1):  # <sheetData/>: no rows
                    return
                in_data = True
                buffer = buffer[found.end():]
            _refuse_unsupported(buffer, self.sheet_path)
            cut = len(buffer) if finished else _last_row_end(buffer)
            if not cut:
                continue
            position = 0
            skipped_to = 0  # rows before this offset need no skip lookup (one found nothing)
            while position < cut:
                if template is not None:
                    match = template.pattern.match(buffer, position, cut)
                    if match is not None:
                        position = match.end()
                        groups = match.groups()
                        number = int(groups[0])
                        if number <= row_number:
                            raise XlsxError(_out_of_order(number, row_number))
                        row_number = number
                        if row_number <= wanted_to or wanted(row_number):
                            if stop_after is not None and row_number > stop_after:
                                return
                            values = template.values(groups) if only is None else template.some(groups, only)
                            self.last_row = row_number
                            if values:
                                yield row_number, values
                            continue
                        self.last_row = row_number
                        if position >= skipped_to:
                            if (moved := skip(buffer, position, cut, row_number)) is None:
                                return
                            position, skipped_to = moved
                        continue
                start = ROW_RE.search(buffer, position, cut)
                if start is None:
                    break
                if start.group(2):  # <row .../>: an empty row
                    content_end = next_position = start.end()
                else:
                    end = ROW_END_RE.search(buffer, start.end(), cut)
                    if end is None:
                        break
                    content_end, next_position = end.start(), end.end()
                number = ROW_NUMBER_RE.search(start.group(1))
                if number:
                    number = int(number.group(1))
                    if number <= row_number:
                        raise XlsxError(_out_of_order(number, row_number))
                    row_number = number
                else:
                    row_number += 1
                position = next_position
                if template is None or misses < 1000:
                    learned = RowTemplate.learn(buffer, start.end(), content_end, strings, dates, deltas, epoch)
                    if learned is not None:
                        template = learned
                    else:
                        misses += 1
                if row_number > wanted_to and not wanted(row_number):
                    self.last_row = row_number
                    if position >= skipped_to:
                        if (moved := skip(buffer, position, cut, row_number)) is None:
                            return
                        position, skipped_to = moved
                    continue
                if stop_after is not None and row_number > stop_after:
                    return
                values = _row_values(buffer, start.end(), content_end, strings, dates, deltas, epoch)
                self.last_row = row_number
                if values:
                    yield row_number, values
            buffer = buffer[position:]

    def header(self):
        """(row number, values) of the first non-empty row (the column titles), or None, without
        reading the rest of the sheet."""
        for number, values in self._rows_with_partial_strings():
            return number, values
        return None

    def _rows_with_partial_strings(self):
        # The header's shared-string indexes are small in practice, but not always: read the table
        # only as far as the largest index the first row uses.
        for number, raw in self._raw_rows():
            needed = []
            for _, kind, _, inner in raw:
                value = VALUE_RE.search(inner) if kind == b"s" else None
                if value and value.group(1).strip().isdigit():
                    needed.append(int(value.group(1)))
            strings = self.shared_strings(upto=max(needed)) if needed else SharedStrings()
            values = _row_values_from_cells(raw, strings, self.date_styles, self.timedelta_styles, self.epoch)
            if values:
                yield number, values

    def _raw_rows(self):
        """(row_number, [(type, value bytes)]) of the first rows, for the header check only."""
        buffer = b""
        for block in self._stream(self.sheet_path):
            buffer += block
            start = ROW_RE.search(buffer)
            if start is None:
                continue
            if start.group(2):
                buffer = buffer[start.end():]
                continue
            end = ROW_END_RE.search(buffer, start.end())
            if end is None:
                continue
            number = ROW_NUMBER_RE.search(start.group(1))
            cells = CELL_RE.findall(buffer, start.end(), end.start())
            yield (int(number.group(1)) if number else 1), cells
            buffer = buffer[end.end():]


def _out_of_order(number, previous):
    return (f"Row {number} comes after row {previous} in the sheet: its rows are out of order, which "
            "Excel and LibreOffice never write. Open the file in one of them, save it again and upload "
            "the new copy.")


ROW_TAG = b'<row r="'


def _skip_rows(data: bytes, position: int, cut: int, target: int):
    """Skipping the rows numbered below `target` in data[position:cut] without parsing them: (offset,
    exact), the offset being that of row `target`'s tag (exact), or of the last row tag when that row is
    numbered below `target`; (position, False) when neither is known (a prefixed tag, or the row is
    missing and a later one is there). Relies on rows coming in increasing order, as SpreadsheetML
    requires and rows() checks on every row it parses."""
    at = data.find(b'<row r="%d"' % target, position, cut)
    if at >= 0:
        return at, True
    at = data.rfind(ROW_TAG, position, cut)
    if at > position:
        end = data.find(b'"', at + len(ROW_TAG), at + 24)
        digits = data[at + len(ROW_TAG):end]
        if end > 0 and digits.isdigit() and int(digits) < target:
            return at, False
    return position, False


def _last_row_end(data: bytes) -> int:
    """Offset just past the last complete </row> in data, or 0."""
    return _last_end_tag(data, b"row>")


def _last_end_tag(data: bytes, name: bytes) -> int:
    """Offset just past the last end tag </name> (any prefix) in data, or 0."""
    at = len(data)
    while True:
        at = data.rfind(name, 0, at)
        if at < 0:
            return 0
        opening = data.rfind(b"<", 0, at)
        if opening >= 0 and data[opening + 1:opening + 2] == b"/":
            return at + len(name)
        at = opening if opening >= 0 else 0
        if at <= 0:
            return 0


LEARN_CELL_RE = re.compile(
    rb"""\s*<c r="([A-Z]{1,3})\d+"((?:\s+[\w:]+="[^"<>]*")*)\s*"""
    rb"""(?:/>|>(?:(<v>)[^<]*</v>|(<is><t(?:\s+xml:space="preserve")?>)[^<]*</t></is>)?</c>)"""
)
TYPE_ATTR_RE = re.compile(rb'\st="(\w+)"')
STYLE_ATTR_RE = re.compile(rb'\ss="(\d+)"')


def _number(raw):
    if not raw:
        return None
    # isdigit() first: whole numbers are the common case, and one test is ~5x cheaper than three `in`s.
    if raw.isdigit():
        return int(raw)
    if b"." in raw or b"E" in raw or b"e" in raw:
        return float(raw)
    return int(raw)


class RowTemplate:
    """A compiled regex for one row layout and a converter per captured cell."""

    def __init__(self, pattern, columns, converters, width, kinds=None, strings=None):
        self.pattern = pattern
        self.columns = columns
        self.converters = converters
        self.width = width
        self.dense = columns == list(range(len(columns)))
        if self.dense and kinds is not None and hasattr(strings, "getter"):
            self.values = self._compile(kinds, strings)

    def _compile(self, kinds, strings):
        """values() as one generated function for this layout: shared strings and plain numbers are
        converted inline (no call per cell), other cells by their converter."""
        names = {"CACHED": strings._cache.get, "LOAD": strings._load, "F": float, "I": int}
        lines = ["def values(g):"]
        for k, (kind, convert) in enumerate(zip(kinds, self.converters), start=1):
            x, v = f"g[{k}]", f"v{k}"
            if kind == "s":  # SharedStrings.getter(), inlined
                lines += [f"    if {x}:", f"        i = I({x})", f"        b = CACHED(i >> {strings.BLOCK_BITS})",
                          f"        if b is None:", f"            b = LOAD(i >> {strings.BLOCK_BITS})",
                          f"        {v} = b[i & {strings.MASK}]", "    else:", f"        {v} = None"]
            elif kind == "n":
                lines.append(f"    {v} = (I({x}) if {x}.isdigit() else F({x}) if (b'.' in {x} or b'E' in {x} "
                             f"or b'e' in {x}) else I({x})) if {x} else None")  # (as _number)
            else:
                names[f"C{k}"] = convert
                lines.append(f"    {v} = C{k}({x})")
        lines += ["    v = [" + ", ".join(f"v{k}" for k in range(1, len(kinds) + 1)) + "]",
                  "    while v and v[-1] is None:", "        v.pop()", "    return v", ""]
        source = "\n".join(lines)
        exec(compile(source, "<xlsx row template>", "exec"), names)  # noqa: S102 (our own source text)
        return names["values"]

    @classmethod
    def learn(cls, buffer, start, end, strings, dates, deltas, epoch):
        position = start
        parts = [rb"""\s*<row\b[^>]*?\sr="(\d+)"[^>]*>"""]
        columns, converters, kinds = [], [], []
        for match in LEARN_CELL_RE.finditer(buffer, start, end):
            if match.start() != position:
                return None
            position = match.end()
            letters, attrs, value_tag, inline_tag = match.groups()
            parts.append(rb"\s*<c r=\"" + letters + rb"\d+\"" + re.escape(attrs) + rb"\s*")
            kind_match = TYPE_ATTR_RE.search(attrs)
            kind = kind_match.group(1) if kind_match else b"n"
            style_match = STYLE_ATTR_RE.search(attrs)
            style = int(style_match.group(1)) if style_match else 0
            if value_tag:
                parts.append(rb">(?:<v>([^<]*)</v>)</c>")
                converters.append(_converter(kind, style, strings, dates, deltas, epoch))
                kinds.append("s" if kind == b"s" else "n" if kind == b"n" and style not in dates else "")
                columns.append(column_index(letters))
            elif inline_tag:
                parts.append(rb">" + re.escape(inline_tag) + rb"([^<]*)</t></is></c>")
                converters.append(text_of)
                kinds.append("")
                columns.append(column_index(letters))
            else:
                parts.append(rb"(?:/>|></c>)")
        if buffer[position:end].strip() or not converters:
            return None
        parts.append(rb"\s*</row>")
        return cls(re.compile(b"".join(parts)), columns, converters, max(columns) + 1, kinds, strings)

    def values(self, groups):
        """The row's values from its match's groups (the row number first)."""
        raw = groups[1:]
        if self.dense:
            values = [convert(value) for convert, value in zip(self.converters, raw)]
        else:
            values = [None] * self.width
            for column, convert, value in zip(self.columns, self.converters, raw):
                values[column] = convert(value)
        while values and values[-1] is None:
            values.pop()
        return values

    def some(self, groups, only):
        """Like values(), converting only the cells of columns in `only`."""
        raw = groups[1:]
        values = [None] * self.width
        for column, convert, value in zip(self.columns, self.converters, raw):
            if column in only:
                values[column] = convert(value)
        while values and values[-1] is None:
            values.pop()
        return values


def _converter(kind, style, strings, dates, deltas, epoch):
    if kind == b"s":
        def shared(raw):
            return strings[int(raw)] if raw else None
        return shared
    if kind == b"n":
        if style in dates:
            is_delta = style in deltas

            def date(raw):
                number = _number(raw)
                if number is None:
                    return None
                try:
                    return from_excel(number, epoch, timedelta=is_delta)
                except (OverflowError, ValueError):
                    return "#VALUE!"
            return date
        return _number
    # Rare kinds (booleans, errors, formula strings, ISO dates): the general cell reader.
    style_bytes = str(style).encode() if style else b""

    def general(raw):
        return _cell_value(kind, style_bytes, b"<v>" + raw + b"</v>", strings, dates, deltas, epoch)
    return general


def _root_element_start(data: bytes) -> int:
    """Offset of the root element: the first '<' that opens neither a declaration nor a PI."""
    position = 0
    while True:
        at = data.find(b"<", position)
        if at < 0 or at + 1 >= len(data):
            return len(data)
        if data[at + 1] in b"?!":
            # <?xml ...?>, a comment or a <!DOCTYPE: all prolog, skip past it
            close = data.find(b">", at)
            if close < 0:
                return len(data)
            position = close + 1
            continue
        return at


def _cell_value(kind, style, inner, strings, dates, deltas, epoch):
    if kind == b"inlineStr":
        return rich_text(inner) if inner else None
    if inner[:3] == b"<v>" and inner[-4:] == b"</v>" and inner.count(b"<") == 2:
        raw = inner[3:-4]
    else:
        match = VALUE_RE.search(inner)
        if match is None:
            return None
        raw = match.group(1)
    if not raw:
        return None
    if kind == b"s":
        return strings[int(raw)]
    if kind == b"" or kind == b"n":
        number = _number(raw)
        if style and int(style) in dates:
            try:
                return from_excel(number, epoch, timedelta=int(style) in deltas)
            except (OverflowError, ValueError):
                return "#VALUE!"
        return number
    if kind == b"str" or kind == b"e":
        return text_of(raw)
    if kind == b"b":
        return raw.strip() not in (b"0", b"false")
    if kind == b"d":
        text = text_of(raw)
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=None)
        except ValueError:
            return text
    return text_of(raw)


def _row_values(buffer, start, end, strings, dates, deltas, epoch):
    values = []
    for letters, kind, style, inner in CELL_RE.findall(buffer, start, end):
        value = _cell_value(kind, style, inner, strings, dates, deltas, epoch) if inner else None
        if letters:
            index = column_index(letters)
            if index != len(values):
                if index < len(values):  # a column twice: keep the later, as openpyxl does
                    values[index] = value
                    continue
                values.extend([None] * (index - len(values)))
        values.append(value)
    while values and values[-1] is None:
        values.pop()
    return values


def _row_values_from_cells(cells, strings, dates, deltas, epoch):
    values = []
    for letters, kind, style, inner in cells:
        value = _cell_value(kind, style, inner, strings, dates, deltas, epoch) if inner else None
        if letters:
            index = column_index(letters)
            if index > len(values):
                values.extend([None] * (index - len(values)))
            elif index < len(values):
                values[index] = value
                continue
        values.append(value)
    while values and values[-1] is None:
        values.pop()
    return values


