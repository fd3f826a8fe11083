"""The litefile rows liteimg really applies to an image: the profile's and the director's.

xCAT's liteimg asks `ilitefile <image>` for its rows (statelite.pm), which
merges the litefile table like this (xCAT-server/lib/xcat/plugins/litetree.pm,
syncmount and mergeArrays):

1. rows whose `image` is the osimage's whole `groups` value (one lookup with
   the attribute as it is, not split at commas),
2. rows whose `image` is empty,
3. rows whose `image` is `ALL`,
4. the image's own rows,

later ones replacing earlier ones for the same file; an empty option means
`tmpfs,rw`; `/etc/mtab` is always `tmpfs,rw` when listed and is added as
`link` when not.  xCAT's tables skip rows whose `disable` is `1` or `yes`.

Pure: the caller reads `tabdump litefile` and the image's `groups` on the
director.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Optional

DEFAULT_OPTION = "tmpfs,rw"
MTAB = "/etc/mtab"


@dataclass(frozen=True)
class TableRow:
    image: str
    file: str
    options: str


@dataclass(frozen=True)
class LiteRow:
    file: str
    options: str
    source: str  # where the row comes from, for people: "profile", "image ALL", ...

    def as_json(self) -> dict[str, str]:
        return {"file": self.file, "options": self.options, "from": self.source}


def parse_table(text: str) -> list[TableRow]:
    """`tabdump litefile` output -> enabled rows (the header names the columns)."""
    records = list(csv.reader(io.StringIO(text)))
    header: list[str] = []
    rows = []
    for record in records:
        if record and record[0].startswith("#"):
            header = [record[0].lstrip("#"), *record[1:]]
            continue
        if not record or not header:
            continue
        cells = dict(zip(header, record))
        if cells.get("disable", "") in ("1", "yes"):
            continue
        rows.append(
            TableRow(cells.get("image", ""), cells.get("file", ""), cells.get("options", ""))
        )
    return rows


def effective_rows(
    image: str,
    rendered: Mapping[str, str],
    table: Optional[list[TableRow]],
    groups: Optional[str],
) -> list[LiteRow]:
    """The rows liteimg applies once apply has loaded the image's rendered rows.

    `table` None: the director's table could not be read; only the rendered
    rows and the automatic /etc/mtab row are known.
    """
    merged: dict[str, LiteRow] = {}
    lookups: list[tuple[str, str]] = []
    if groups:
        lookups.append((groups, f"director litefile, image={groups} (the osimage's groups)"))
    lookups += [
        ("", "director litefile, image='' (every image)"),
        ("ALL", "director litefile, image=ALL"),
    ]
    for key, source in lookups:
        for row in table or []:
            if row.image == key and row.file:
                merged[row.file] = LiteRow(row.file, row.options or DEFAULT_OPTION, source)
    for path, option in rendered.items():
        merged[path] = LiteRow(path, option or DEFAULT_OPTION, "profile")
    if MTAB in merged:
        old = merged[MTAB]
        merged[MTAB] = LiteRow(MTAB, DEFAULT_OPTION, f"{old.source} (xCAT forces tmpfs,rw)")
    else:
        merged[MTAB] = LiteRow(MTAB, "link", "added by xCAT on Linux")
    return [merged[path] for path in sorted(merged)]
