"""Write a large products spreadsheet for the import benchmark, fast and in constant memory.

openpyxl would need minutes and gigabytes for 700k rows, so the parts are written directly, in the two
shapes real files come in:
  --strings shared  strings in xl/sharedStrings.xml, as Excel and LibreOffice save them (the default);
  --strings inline  inline strings in the sheet, as openpyxl's write-only mode and many exporters do.
Every code, name and description is unique (~2.1M shared strings for 700k rows), like a real catalogue.

    .venv/bin/python bench/make_products_xlsx.py var/products_700k.xlsx --rows 700000
    .venv/bin/python bench/make_products_xlsx.py var/products.csv --rows 1000      # CSV by extension
"""

import argparse
import csv
import random
import sys
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

HEADERS = ["Code", "Name", "Brand", "Category", "Description", "Price", "Stock", "Barcode"]
BRANDS = [f"Brand {name}" for name in (
    "Acme", "Bosch", "Makita", "Hilti", "Festool", "Stanley", "DeWalt", "Metabo", "Fein", "Wera",
    "Knipex", "Wiha", "Gedore", "Hazet", "Stahlwille", "Facom", "Bahco", "Irwin", "Milwaukee", "Ryobi",
)]
CATEGORIES = [f"Category {i:03d}" for i in range(120)]
WORDS = ("steel", "brass", "compact", "heavy duty", "cordless", "precision", "set", "kit", "pro", "mini",
         "long", "short", "red", "blue", "black", "silver", "18V", "12V", "metric", "imperial")


def rows(count, seed=4, price_bump=0):
    """The data rows: deterministic for a seed, so a second file can differ from the first in a known way."""
    rnd = random.Random(seed)
    for i in range(count):
        words = " ".join(rnd.sample(WORDS, 3))
        price = round(rnd.uniform(0.5, 2500), 2) + (price_bump if i % 10 == 0 else 0)
        yield [
            f"SKU-{i:07d}",
            f"Product {i} {words}",
            BRANDS[i % len(BRANDS)],
            CATEGORIES[(i * 7) % len(CATEGORIES)],
            f"Description of product {i}: {words}, part of the {BRANDS[i % len(BRANDS)]} range",
            f"{price:.2f}",
            rnd.randint(0, 5000),
            4000000000000 + i,
        ]


def col_letter(index):
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


CONTENT_TYPES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>{shared}</Types>"""
SHARED_TYPE = '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
ROOT_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"""
WORKBOOK = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Products" sheetId="1" r:id="rId1"/></sheets></workbook>"""
WORKBOOK_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>{shared}</Relationships>"""
SHARED_REL = '<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>'
STYLES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts><fills count="1"><fill><patternFill patternType="none"/></fill></fills><borders count="1"><border/></borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs><cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/><xf numFmtId="2" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs></styleSheet>"""
SHEET_HEAD = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><dimension ref="A1:{last}"/><sheetData>"""
SHEET_TAIL = "</sheetData></worksheet>"

TEXT_COLUMNS = (0, 1, 2, 3, 4)


def write_xlsx(path, count, strings="shared", seed=4, price_bump=0):
    letters = [col_letter(i) for i in range(len(HEADERS))]
    shared = strings == "shared"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        zf.writestr("[Content_Types].xml", CONTENT_TYPES.format(shared=SHARED_TYPE if shared else ""))
        zf.writestr("_rels/.rels", ROOT_RELS)
        zf.writestr("xl/workbook.xml", WORKBOOK)
        zf.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS.format(shared=SHARED_REL if shared else ""))
        zf.writestr("xl/styles.xml", STYLES)
        table = {}  # only the repeated strings (headers, brands, categories) are looked up
        unique_count = [0]

        def index_of(text, repeated):
            if repeated:
                if text not in table:
                    table[text] = unique_count[0]
                    unique_count[0] += 1
                    order.append(text)
                return table[text]
            unique_count[0] += 1
            order.append(text)
            return unique_count[0] - 1

        order = []  # strings in index order, flushed to a temporary part as we go
        spill = open(str(path) + ".strings.tmp", "w", encoding="utf-8")

        def flush():
            for text in order:
                spill.write(f"<si><t>{escape(text)}</t></si>")
            order.clear()

        with zf.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            out = []
            out.append(SHEET_HEAD.format(last=f"{letters[-1]}{count + 1}"))
            cells = []
            for c, name in enumerate(HEADERS):
                if shared:
                    cells.append(f'<c r="{letters[c]}1" t="s"><v>{index_of(name, True)}</v></c>')
                else:
                    cells.append(f'<c r="{letters[c]}1" t="inlineStr"><is><t>{escape(name)}</t></is></c>')
            out.append(f'<row r="1">{"".join(cells)}</row>')
            for n, row in enumerate(rows(count, seed, price_bump), start=2):
                cells = []
                for c, value in enumerate(row):
                    ref = f"{letters[c]}{n}"
                    if c in TEXT_COLUMNS:
                        if shared:
                            cells.append(f'<c r="{ref}" t="s"><v>{index_of(value, c in (2, 3))}</v></c>')
                        else:
                            cells.append(f'<c r="{ref}" t="inlineStr"><is><t>{escape(value)}</t></is></c>')
                    elif c == 5:
                        cells.append(f'<c r="{ref}" s="1"><v>{value}</v></c>')
                    else:
                        cells.append(f'<c r="{ref}"><v>{value}</v></c>')
                out.append(f'<row r="{n}">{"".join(cells)}</row>')
                if len(out) >= 2000:
                    sheet.write("".join(out).encode())
                    out.clear()
                    flush()
            out.append(SHEET_TAIL)
            sheet.write("".join(out).encode())
        flush()
        spill.close()
        if shared:
            with zf.open("xl/sharedStrings.xml", "w", force_zip64=True) as part, \
                    open(str(path) + ".strings.tmp", "rb") as source:
                part.write(
                    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                    '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
                    f'count="{count * 5 + len(HEADERS)}" uniqueCount="{unique_count[0]}">'.encode()
                )
                while block := source.read(1 << 20):
                    part.write(block)
                part.write(b"</sst>")
        Path(str(path) + ".strings.tmp").unlink()


def write_csv(path, count, seed=4, price_bump=0):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADERS)
        writer.writerows(rows(count, seed, price_bump))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", type=Path)
    parser.add_argument("--rows", type=int, default=700_000)
    parser.add_argument("--strings", choices=["shared", "inline"], default="shared")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--price-bump", type=float, default=0,
                        help="Add this to every tenth price (a file that changes 10%% of the products).")
    args = parser.parse_args(argv)
    args.path.parent.mkdir(parents=True, exist_ok=True)
    if args.path.suffix.lower() == ".csv":
        write_csv(args.path, args.rows, args.seed, args.price_bump)
    else:
        write_xlsx(args.path, args.rows, args.strings, args.seed, args.price_bump)
    print(f"wrote {args.path} ({args.path.stat().st_size / 1e6:.1f} MB, {args.rows} rows, "
          f"{'csv' if args.path.suffix.lower() == '.csv' else args.strings + ' strings'})", file=sys.stderr)


if __name__ == "__main__":
    main()
