"""`genseq models list`: the models genseq ships, usable by name as CHECKPOINT."""

from __future__ import annotations

from genseq.commands._common import JsonOpt, print_json, print_table


def list_models(json_out: JsonOpt = False) -> None:
    """List the models genseq ships: `genseq sample NAME` works wherever genseq is installed.

    A directory of the same name in the current directory is used instead (a path that
    exists always wins). Each model's files are checked against their checksums here, as
    whenever the model is loaded.
    """
    from genseq.shipped import shipped_models

    rows = []
    for name, model in shipped_models().items():
        problem = model.problem()
        rows.append(
            {
                "name": name,
                "status": f"damaged: {problem}" if problem else "ok",
                "level": model.level,
                "size": model.size,
                "description": model.description,
                "trained_on": model.trained_on,
                "license": model.license,
                "path": str(model.path),
                "sha256": model.sha256,
            }
        )
    if json_out:
        for row in rows:
            print_json(row)
        return
    from rich.table import Table

    table = Table(title="shipped models (use the name as CHECKPOINT)", title_justify="left")
    for column in ("name", "level", "size", "status", "description"):
        table.add_column(column, overflow="fold")
    for row in rows:
        size = f"{row['size'] / 1e6:.1f} MB"
        table.add_row(row["name"], row["level"], size, row["status"], row["description"])
    print_table(table)
