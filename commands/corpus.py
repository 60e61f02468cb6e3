"""`genseq corpus list` and `genseq corpus fetch`: the corpora genseq knows by name."""

from __future__ import annotations

from typing import Annotated

import typer
from genseq.commands._common import (
    CacheDirOpt,
    JsonOpt,
    print_json,
    print_out,
    print_table,
    stdout,
)


def _status(entry, cache_dir) -> tuple[str, str]:
    from genseq.corpus import bundled_files, cached_path, package_root

    if entry.kind == "bundled":
        if package_root(entry.package or "") is None:
            return "missing", f"needs the {entry.package} package"
        files = bundled_files(entry)
        size = sum(p.stat().st_size for p in files)
        return "bundled", f"{len(files):,} files, {size / 1e6:.1f} MB"
    path = cached_path(entry, cache_dir)
    if path.is_file():
        return "cached", str(path)
    return "download", f"{(entry.size or 0) / 1e6:.1f} MB on first use"


def list_corpora(json_out: JsonOpt = False, cache_dir: CacheDirOpt = None) -> None:
    """List corpus names usable as SOURCE in `genseq tokenize` and `genseq train`."""
    from genseq.corpus import load_registry

    registry = load_registry()
    rows = []
    for name, entry in registry.items():
        status, detail = _status(entry, cache_dir)
        rows.append(
            {
                "name": name,
                "kind": entry.kind,
                "status": status,
                "detail": detail,
                "description": entry.description,
                "license": entry.license,
                "url": entry.url,
                "sha256": entry.sha256,
            }
        )
    if json_out:
        for row in rows:
            print_json(row)
        return
    from rich.table import Table

    table = Table(title="corpora (use the name as SOURCE)", title_justify="left")
    for column in ("name", "status", "size / place", "description"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row["name"], row["status"], row["detail"], row["description"])
    print_table(table)


def fetch_corpus(
    name: Annotated[str, typer.Argument(help="A download corpus from `genseq corpus list`.")],
    cache_dir: CacheDirOpt = None,
) -> None:
    """Download a corpus into the cache now (checked against its SHA-256); print its path."""
    from genseq.corpus import bundled_files, fetch, load_registry
    from genseq.errors import GenseqError

    registry = load_registry()
    if name not in registry:
        raise GenseqError(f"{name}: not a corpus name (see `genseq corpus list`)")
    stdout()  # the path is the result: refuse before downloading when nobody can read it
    entry = registry[name]
    if entry.kind == "bundled":
        for path in bundled_files(entry):
            print_out(str(path))
        return
    print_out(str(fetch(entry, cache_dir)))
