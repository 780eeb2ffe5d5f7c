"""Spreadsheets for the tests: written by openpyxl, then (where a test needs it) rewritten the way Excel
saves them (shared strings, cached formula values), or deliberately broken (zip bomb, entities)."""

import io
import re
import zipfile


import openpyxl
from django.core.files.uploadedfile import SimpleUploadedFile

HEADERS = ["Code", "Name", "Brand", "Category", "Description", "Price", "Stock", "Barcode"]


def product_rows(count, start=0, price=None):
    return [[f"SKU-{i:05d}", f"Product {i} drill", f"Brand {i % 3}", "Tools", f"Description {i}",
             price if price is not None else round(10 + i * 0.25, 2), i % 50, 4000000000000 + i]
            for i in range(start, start + count)]


def xlsx_bytes(rows, headers=HEADERS, sheets=None):
    """An openpyxl workbook (inline strings): rows on the first sheet, optional further sheets."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Products"
    if headers is not None:
        sheet.append(headers)
    for row in rows:
        sheet.append(row)
    for title, extra_rows in (sheets or {}).items():
        other = workbook.create_sheet(title)
        for row in extra_rows:
            other.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


INLINE_RE = re.compile(rb'<c r="([A-Z]+\d+)"((?: s="\d+")?) t="inlineStr"><is><t(?: xml:space="preserve")?>([^<]*)</t></is></c>')


def with_shared_strings(data, extra_entries=()):
    """Rewrite an openpyxl file the way Excel saves it: strings in xl/sharedStrings.xml.
    extra_entries: raw <si> inner XML appended to the table (rich text, phonetic runs)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    table, index = [], {}

    def shared(match):
        ref, style, text = match.groups()
        if text not in index:
            index[text] = len(table)
            table.append(b"<si><t>" + text + b"</t></si>")
        return b'<c r="' + ref + b'"' + style + b' t="s"><v>' + str(index[text]).encode() + b"</v></c>"

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename.startswith("xl/worksheets/sheet"):
                content = INLINE_RE.sub(shared, content)
            elif info.filename == "[Content_Types].xml":
                content = content.replace(b"</Types>", b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>')
            elif info.filename == "xl/_rels/workbook.xml.rels":
                content = content.replace(b"</Relationships>", b'<Relationship Id="rIdSST" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>')
            target.writestr(info.filename, content)
        entries = table + [b"<si>" + e + b"</si>" for e in extra_entries]
        target.writestr("xl/sharedStrings.xml", b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                        b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="%d" uniqueCount="%d">'
                        % (len(entries), len(entries)) + b"".join(entries) + b"</sst>")
    return out.getvalue(), len(table)


def replace_part(data, name, transform):
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename == name:
                content = transform(content)
            target.writestr(info.filename, content)
    return out.getvalue()


def zip_bomb():
    """A valid-looking xlsx whose sheet inflates ~1000x: refused before parsing."""
    data = xlsx_bytes(product_rows(2))
    filler = b"<!-- " + b"A" * (20 << 20) + b" -->"
    return replace_part(data, "xl/worksheets/sheet1.xml", lambda content: content.replace(b"<sheetData>", filler + b"<sheetData>"))


def with_entities(part="xl/worksheets/sheet1.xml"):
    data = xlsx_bytes(product_rows(2))
    doctype = b'<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'

    def insert(content):
        if content.startswith(b"<?xml"):
            return content.replace(b"?>", b"?>" + doctype, 1)
        return doctype + content
    return replace_part(data, part, insert)


def csv_bytes(rows, headers=HEADERS, delimiter=","):
    lines = [delimiter.join(headers)] if headers else []
    for row in rows:
        lines.append(delimiter.join("" if v is None else str(v) for v in row))
    return ("\n".join(lines) + "\n").encode()


def upload(data, name="products.xlsx"):
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")



