"""Read `lsdef -t osimage -z` stanzas and `tabdump litefile` rows, refusing hostile values.

The stanza text comes from a director (or a file an admin saved), so every
object name and attribute is checked before it can become a path, a profile
name or a line of a file imagespec writes.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from ..errors import ImagespecError
from ..safe import OBJECT_NAME_RE, unsafe_char

ATTRIBUTE_NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"


class ImportInputError(ImagespecError):
    """The stanzas, the litefile rows or a file they name cannot be imported as they are."""


@dataclass(frozen=True)
class Osimage:
    """One osimage definition: its name, attributes (objtype left out) and where it was read."""

    name: str
    attributes: dict[str, str]
    where: str  # "file:line" of its header


def parse_osimages(text: str, label: str) -> dict[str, Osimage]:
    """Every `objtype=osimage` object of an `lsdef -z` text, by name.

    Objects of another type are skipped; a name or attribute that could not
    come from xCAT (a path segment, a control character) is an error naming
    the line.
    """
    found: dict[str, tuple[int, dict[str, str], str]] = {}
    current: dict[str, str] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        where = f"{label}:{number}"
        char = unsafe_char(raw)
        if char is not None:
            raise ImportInputError(
                f"{where}: a control character ({char!r}) in the stanza text; "
                "give the output of `lsdef -t osimage -z` as it is"
            )
        line = raw.rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace() and line.endswith(":"):
            name = line[:-1].strip()
            _check_name(name, where)
            if name in found:
                raise ImportInputError(f"{where}: osimage '{name}' is defined twice")
            current = {}
            found[name] = (number, current, label)
            continue
        key, sep, value = line.strip().partition("=")
        if current is None or not sep:
            raise ImportInputError(
                f"{where}: expected 'name:' or '    attribute=value', found {line.strip()!r}"
            )
        _check_attribute(key, where)
        current[key] = value
    return {
        name: Osimage(name, {k: v for k, v in attrs.items() if k != "objtype"}, f"{lab}:{n}")
        for name, (n, attrs, lab) in found.items()
        if attrs.get("objtype", "osimage") == "osimage"
    }


def _check_name(name: str, where: str) -> None:
    if not OBJECT_NAME_RE.match(name):
        raise ImportInputError(
            f"{where}: '{name}' is not an xCAT object name (letters, digits, '_', '.', '-',"
            " no '/' or '..'); fix the definition on the director or leave it out of the file"
        )


def _check_attribute(key: str, where: str) -> None:
    if not key or not key[0].isalpha() or any(c not in ATTRIBUTE_NAME_CHARS for c in key):
        raise ImportInputError(f"{where}: '{key}' is not an osimage attribute name")


@dataclass(frozen=True)
class LiteRow:
    """One row of xCAT's litefile table (blank options are kept blank here)."""

    image: str
    file: str
    options: str
    disabled: bool


def parse_litefile_rows(text: str, label: str) -> list[LiteRow]:
    """Rows of a `tabdump litefile` CSV (header and comment lines skipped)."""
    rows = []
    for number, record in enumerate(csv.reader(io.StringIO(text)), 1):
        if not record or record[0].startswith("#"):
            continue
        if len(record) < 2:
            raise ImportInputError(f"{label}:{number}: a litefile row needs image and file")
        fields = [*record, "", "", ""][:5]
        for value in fields:
            if unsafe_char(value) is not None:
                raise ImportInputError(f"{label}:{number}: a control character in a litefile row")
        disabled = fields[4].strip().lower() in ("1", "yes")
        rows.append(LiteRow(fields[0], fields[1], fields[2], disabled))
    return rows
