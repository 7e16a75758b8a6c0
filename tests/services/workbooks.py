"""Workbooks and other files for the Excel/API tests, built in memory."""

from __future__ import annotations

import io
import random
import string
import zipfile
from collections.abc import Iterable, Sequence
from typing import Any

from openpyxl import Workbook
from openpyxl.utils import get_column_letter

PRODUCTS_HEADER = ("SKU", "Name", "Description", "Price")
PRODUCTS = [
    ("K-100", "Electric kettle", "Boils a litre of water in three minutes", 29.9),
    ("F-200", "Compact refrigerator", "Fridge, 120 litres, keeps beverages chilled", 399),
    ("T-300", "Toaster", "Two-slice toaster with browning control", 24.5),
    ("M-400", "Microwave oven", "Heats and defrosts meals quickly", 89),
    ("H-500", "Space heater", "Warms a small room on winter evenings", 59),
    ("V-600", "Vacuum cleaner", "Cordless, picks up dust and pet hair", 149),
    ("L-700", "Desk lamp", "LED lamp with adjustable brightness", 35),
    ("B-800", "Blender", "Makes smoothies and soups", 49),
]  # fmt: skip
FRIDGE_ROW = 3  # header on row 1, the fridge is the second product


def xlsx(sheets: dict[str, Iterable[Sequence[Any]]]) -> bytes:
    workbook = Workbook()
    workbook.remove(workbook.active)
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(list(row))
    buf = io.BytesIO()
    workbook.save(buf)
    return buf.getvalue()


def products_xlsx() -> bytes:
    return xlsx({"Products": [PRODUCTS_HEADER, *PRODUCTS]})


def wide_xlsx(columns: int = 10_000) -> bytes:
    return xlsx({"Wide": [[f"c{i}" for i in range(columns)], list(range(columns))]})


def zip_bomb(megabytes: int = 64) -> bytes:
    """A valid-looking .xlsx whose sheet inflates ~1000x (zeros compress extremely well)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        with archive.open("xl/worksheets/sheet1.xml", "w") as member:
            chunk = b"\0" * (1024 * 1024)
            for _ in range(megabytes):
                member.write(chunk)
    return buf.getvalue()


def encrypted_xlsx() -> bytes:
    """What Excel writes for a password-protected workbook: an OLE2 file, EncryptedPackage."""
    header = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504
    return header + "EncryptedInfo".encode("utf-16-le") + "EncryptedPackage".encode("utf-16-le")


def legacy_xls() -> bytes:
    return b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504 + "Workbook".encode("utf-16-le")


def truncated_xlsx() -> bytes:
    data = products_xlsx()
    return data[: len(data) // 2]


def garbled_xlsx() -> bytes:
    """A well-formed ZIP whose worksheet XML is garbage."""
    source = zipfile.ZipFile(io.BytesIO(products_xlsx()))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename.startswith("xl/worksheets/"):
                data = b"<worksheet><sheetData><row r='1'><c r='A1' t='s'><v>oops"
            out.writestr(info.filename, data)
    return buf.getvalue()


def plain_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("notes.txt", "not a workbook")
    return buf.getvalue()


_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_SST_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings"
_SST_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"


def shared_string_bomb(rows: int = 3, columns: int = 1024, chars: int = 16_000) -> bytes:
    """Issue 10's amplifier: one long shared string referenced by every cell of the sheet.

    openpyxl writes strings inline, so its workbook is the skeleton and the sheet is swapped
    for one whose cells all point at shared string 0. Random letters keep the string itself
    from compressing: the file is ~20 KB, each cell a few bytes, each row 16 M characters.
    """
    workbook = Workbook()
    workbook.active["A1"] = 1  # type: ignore[index]
    skeleton = io.BytesIO()
    workbook.save(skeleton)
    text = "".join(random.Random(7).choices(string.ascii_letters, k=chars))
    sheet_rows = "".join(
        f'<row r="{r}">'
        + "".join(
            f'<c r="{get_column_letter(c)}{r}" t="s"><v>0</v></c>' for c in range(1, columns + 1)
        )
        + "</row>"
        for r in range(1, rows + 1)
    )
    sheet = f'<worksheet xmlns="{_MAIN_NS}"><sheetData>{sheet_rows}</sheetData></worksheet>'
    shared = (
        f'<sst xmlns="{_MAIN_NS}" count="{rows * columns}" uniqueCount="1">'
        f"<si><t>{text}</t></si></sst>"
    )
    source = zipfile.ZipFile(skeleton)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = sheet.encode()
            elif info.filename == "[Content_Types].xml":
                override = f'<Override PartName="/xl/sharedStrings.xml" ContentType="{_SST_TYPE}"/>'
                data = data.replace(b"</Types>", f"{override}</Types>".encode())
            elif info.filename == "xl/_rels/workbook.xml.rels":
                rel = f'<Relationship Id="rIdSst" Type="{_SST_REL}" Target="sharedStrings.xml"/>'
                data = data.replace(b"</Relationships>", f"{rel}</Relationships>".encode())
            archive.writestr(info.filename, data)
        archive.writestr("xl/sharedStrings.xml", shared)
    return out.getvalue()


def small_member_bomb(members: int = 40, size: int = 1_000_000) -> bytes:
    """A real workbook plus many members just under 1 MiB of zeros (each ~1000x): no single
    member is big enough for the per-member ratio check, together they are 40 MB from 60 KB."""
    source = zipfile.ZipFile(io.BytesIO(products_xlsx()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            archive.writestr(info.filename, source.read(info.filename))
        zeros = b"\0" * size
        for i in range(members):
            archive.writestr(f"xl/media/image{i}.bin", zeros)
    return out.getvalue()
