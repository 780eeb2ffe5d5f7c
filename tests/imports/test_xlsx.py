"""The streaming xlsx reader gives what openpyxl gives, on files written by openpyxl and on the same
files saved Excel-style (shared strings, cached formula results), and refuses unsafe files."""

import io
import re
import zipfile
from datetime import date, datetime, time

import openpyxl
import pytest
from openpyxl.cell.rich_text import CellRichText, TextBlock
from openpyxl.cell.text import InlineFont

from imports import xlsx
from imports.xlsx import SharedStrings, XlsxError, XlsxReader, ZipLimits
from tests.imports import files

MIXED_ROWS = [
    ["Code", "Name", "Price", "When", "Flag", "Empty", "Note"],
    ["A-1", "Plain text", 12.5, datetime(2024, 1, 28, 10, 30), True, None, "  spaced  "],
    ["A-2", "Ümlaut & <xml> \"quotes\"", 3, date(2023, 12, 31), False, None, None],
    [None, None, None, None, None, None, None],  # an empty row: skipped by both
    ["A-4", None, -0.5, time(8, 15), None, None, "last column only"],
    [1234, 1e-7, 10 ** 15, None, None, None, "x" * 300],
]


def openpyxl_rows(data):
    workbook = openpyxl.load_workbook(io.BytesIO(data), data_only=True)
    rows = []
    for row in workbook.worksheets[0].iter_rows(values_only=True):
        values = list(row)
        while values and values[-1] is None:
            values.pop()
        if values:
            rows.append(values)
    return rows


def our_rows(data):
    with XlsxReader(io.BytesIO(data)) as reader:
        return [values for _, values in reader.rows()]


def workbook_with_formulas():
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in MIXED_ROWS:
        sheet.append(row)
    sheet["H2"] = "=C2*2"
    sheet["I2"] = '=A2&"!"'
    sheet.cell(row=2, column=4).number_format = "yyyy-mm-dd hh:mm"
    rich = CellRichText([TextBlock(InlineFont(b=True), "Bold"), " and plain"])
    sheet["J3"] = rich
    extra = workbook.create_sheet("Second")
    extra.append(["not", "this", "sheet"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    # Excel stores the last computed result of a formula; openpyxl does not compute: add them.
    return files.replace_part(buffer.getvalue(), "xl/worksheets/sheet1.xml", lambda xml: xml.replace(
        b"<f>C2*2</f><v />", b"<f>C2*2</f><v>25</v>").replace(
        b'<c r="I2"><f>A2&amp;"!"</f><v />', b'<c r="I2" t="str"><f>A2&amp;"!"</f><v>A-1!</v>'))


@pytest.mark.parametrize("shape", ["inline", "shared"])
def test_reader_matches_openpyxl(shape):
    data = workbook_with_formulas()
    if shape == "shared":
        data, _ = files.with_shared_strings(data)
    expected = openpyxl_rows(data)
    assert our_rows(data) == expected
    # and the content we meant to test is in there
    assert expected[1][7] == 25 and expected[1][8] == "A-1!"
    assert isinstance(expected[1][3], datetime) and expected[2][1] == 'Ümlaut & <xml> "quotes"'
    assert expected[1][4] is True and expected[2][4] is False
    assert "Bold and plain" in expected[2]


def test_reader_matches_openpyxl_on_a_products_file_both_shapes():
    data = files.xlsx_bytes(files.product_rows(300))
    shared, count = files.with_shared_strings(data)
    assert count > 900
    assert our_rows(data) == openpyxl_rows(data) == our_rows(shared) == openpyxl_rows(shared)


def test_rich_text_and_phonetic_shared_strings_give_plain_text():
    data, count = files.with_shared_strings(files.xlsx_bytes([["first"]], headers=None), extra_entries=[
        b'<r><rPr><b/></rPr><t>Bold</t></r><r><t xml:space="preserve"> and plain &amp; more</t></r>',
        b'<t>\xe6\x9d\xb1\xe4\xba\xac</t><rPh sb="0" eb="2"><t>\xe3\x83\x88\xe3\x82\xa6</t></rPh>',
    ])
    with XlsxReader(io.BytesIO(data)) as reader:
        table = reader.shared_strings()
        assert [table[i] for i in range(count, count + 2)] == ["Bold and plain & more", "東京"]


def test_shared_strings_table_spans_many_blocks():
    table = SharedStrings()
    entries = [f"s{i}&amp;".encode() for i in range(SharedStrings.BLOCK * 3 + 5)]
    table.extend(entries[:100])
    for entry in entries[100:]:
        table.append(entry)
    table.finish()
    assert len(table) == len(entries)
    for index in (0, 99, 100, SharedStrings.BLOCK - 1, SharedStrings.BLOCK, 2 * SharedStrings.BLOCK + 7,
                  len(entries) - 1, 5):
        assert table[index] == f"s{index}&"
    with pytest.raises(IndexError):
        table[len(entries) + SharedStrings.BLOCK]


def test_first_sheet_in_workbook_order_and_header_only_read():
    data = files.xlsx_bytes([["A", "B"]], headers=["Code", "Name"], sheets={"Other": [["x"]]})
    with XlsxReader(io.BytesIO(data)) as reader:
        assert reader.sheet_name == "Products"
        assert reader.header() == (1, ["Code", "Name"])
        assert reader.dimension_rows() == 2
        assert reader.count_rows() == 2


def test_rows_resume_after_a_row_number():
    data = files.xlsx_bytes(files.product_rows(20))
    with XlsxReader(io.BytesIO(data)) as reader:
        numbers = [n for n, _ in reader.rows(start_after=15)]
    assert numbers == [16, 17, 18, 19, 20, 21]


def test_readers_sharing_a_sheet_read_every_row_once():
    """Sparse rows (a gap in the numbering), a row of another layout (the general path) and resuming."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(files.HEADERS)
    for number, row in zip([*range(2, 26), *range(31, 47)], files.product_rows(40)):
        for column, value in enumerate(row, start=1):
            sheet.cell(row=number, column=column, value=value)
    sheet.cell(row=20, column=2, value=3.5)  # a number where the layout has text: the general path
    buffer = io.BytesIO()
    workbook.save(buffer)
    data, _ = files.with_shared_strings(buffer.getvalue())
    with XlsxReader(io.BytesIO(data)) as reader:
        everything = list(reader.rows(start_after=1))
    assert [n for n, _ in everything] == [*range(2, 26), *range(31, 47)]
    for count in (1, 2, 3):
        for start_after in (1, 12):
            together = []
            for index in range(count):
                with XlsxReader(io.BytesIO(data)) as reader:
                    mine = list(reader.rows(start_after=start_after, share=(index, count, 4, 2)))
                    assert reader.last_row == 46  # each reader reads past every row
                # reader k converts runs k, k + count, ... of 4 row numbers from row 2
                assert all(((number - 2) // 4) % count == index for number, _ in mine)
                together.extend(mine)
            assert sorted(together) == [row for row in everything if row[0] > start_after]


def test_readers_sharing_a_long_sheet_skip_other_runs_across_blocks(monkeypatch):
    """The runs a reader does not convert are skipped by looking for the next wanted row's tag, over
    several inflated blocks, with the first row of some runs missing (then the tag of a later row
    tells how far is safe) and rows written Excel-style with more attributes."""
    monkeypatch.setattr(xlsx, "CHUNK", 64 << 10)  # the sheet spans ~15 blocks
    data, _ = files.with_shared_strings(files.xlsx_bytes(files.product_rows(3000)))
    missing = {252, 752, 753, 1001, *range(1400, 1461), 3001}

    def rewrite(content):
        def row(match):
            number = int(match.group(1))
            if number in missing:
                return b""
            if number % 3 == 0:
                return match.group(0).replace(b'<row r="%d"' % number, b'<row r="%d" spans="1:8"' % number, 1)
            return match.group(0)
        return re.sub(rb'<row r="(\d+)"[^>]*>.*?</row>', row, content, flags=re.S)
    data = files.replace_part(data, "xl/worksheets/sheet1.xml", rewrite)
    with XlsxReader(io.BytesIO(data)) as reader:
        everything = list(reader.rows(start_after=1))
    assert len(everything) == 3000 - len(missing) and everything[-1][0] == 3000
    for count in (2, 3):
        for start_after in (1, 1000):
            together = []
            for index in range(count):
                with XlsxReader(io.BytesIO(data)) as reader:
                    mine = list(reader.rows(start_after=start_after, share=(index, count, 250, 2)))
                assert all(((number - 2) // 250) % count == index for number, _ in mine)
                together.extend(mine)
            assert sorted(together) == [row for row in everything if row[0] > start_after]


def test_skipping_rows_finds_the_wanted_row_or_a_safe_place_without_parsing():
    data = b'<row r="8"><c/></row><row r="9" spans="1:2"><c/></row><row r="12"><c/></row><row r="13"><c/></row>'
    nine, twelve, thirteen = (data.index(b'<row r="%d"' % n) for n in (9, 12, 13))
    assert xlsx._skip_rows(data, 0, len(data), 9) == (nine, True)  # its tag, whatever follows the number
    assert xlsx._skip_rows(data, 0, len(data), 20) == (thirteen, False)  # all rows before it: the last tag
    assert xlsx._skip_rows(data, 0, len(data), 11) == (0, False)  # missing, and a later row is there
    assert xlsx._skip_rows(data, thirteen, len(data), 20) == (thirteen, False)  # nothing to skip
    assert xlsx._skip_rows(data, 0, twelve, 12) == (nine, False)  # the wanted tag past the block's end
    prefixed = data.replace(b"<row", b"<x:row")
    assert xlsx._skip_rows(prefixed, 0, len(prefixed), 20) == (0, False)  # a prefix: rows are parsed


def test_rows_out_of_order_are_refused():
    data = files.xlsx_bytes(files.product_rows(5))
    data = files.replace_part(data, "xl/worksheets/sheet1.xml",
                              lambda content: content.replace(b'<row r="3"', b'<row r="9"'))
    with XlsxReader(io.BytesIO(data)) as reader:
        with pytest.raises(XlsxError, match="Row 4 comes after row 9 in the sheet: its rows are out of order"):
            list(reader.rows(start_after=1))


def test_not_a_zip_is_refused():
    with pytest.raises(XlsxError, match="not a zip archive"):
        XlsxReader(io.BytesIO(b"Code,Name\n1,2\n"))


def test_zip_bomb_is_refused_before_inflating():
    with pytest.raises(XlsxError, match="zip bomb"):
        XlsxReader(io.BytesIO(files.zip_bomb()))


def test_declared_size_limit():
    data = files.xlsx_bytes(files.product_rows(50))
    with pytest.raises(XlsxError, match="would inflate to"):
        XlsxReader(io.BytesIO(data), ZipLimits(max_entry_bytes=1000))


@pytest.mark.parametrize("part", ["xl/worksheets/sheet1.xml", "xl/workbook.xml"])
def test_entity_declarations_are_refused(part):
    data = files.with_entities(part)
    with pytest.raises(XlsxError, match="DTD or XML entities"):
        with XlsxReader(io.BytesIO(data)) as reader:
            reader.header()
            list(reader.rows())


def test_zip_without_workbook_is_refused():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "not a workbook")
    with pytest.raises(XlsxError, match="not an Excel workbook"):
        XlsxReader(io.BytesIO(buffer.getvalue()))
