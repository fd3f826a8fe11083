"""The generations table fits an 80-column terminal without wrapping a cell."""

from __future__ import annotations

import io

from rich.console import Console

from imagespec.ops.inspect import GenerationRow, Generations
from imagespec.report.inspect import print_generations


def test_generations_table_fits_80_columns() -> None:
    digests = {"build": "sha256:" + "ab" * 32, "pack": "sha256:" + "cd" * 32}
    rows = [
        GenerationRow(n, "f" * 40, "2024-01-01T00:00:00Z", digests, False, n == 12, n != 10)
        for n in (12, 11, 10)
    ]
    found = Generations("cascade", "rocky8-x86_64-netboot-compute", "/install/x", 12, rows)
    out = io.StringIO()
    print_generations(Console(file=out, width=80, highlight=False, soft_wrap=True), found)
    table = out.getvalue().splitlines()[1:]
    assert len(table) == 4, table  # header and three rows: nothing wrapped
    assert all(len(line) <= 80 for line in table)
    assert table[1].split()[:6] == [
        "12",
        "*",
        "2024-01-01T00:00:00Z",
        "f" * 10,
        "abababab",
        "cdcdcdcd",
    ]
    assert table[3].split()[-1] == "-" and table[2].split()[-1] == "manifest"
