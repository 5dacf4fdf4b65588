"""The summary the index-changing subcommands (add, delete, update) print."""

from __future__ import annotations

from ..lifecycle import Change
from ._common import dump_json, format_table


def print_change(change: Change, fmt: str, *, dry_run: bool = False) -> None:
    """Print what ``change`` did: a two-column table, or JSON (``Change.as_dict``)."""
    if fmt == "json":
        data = change.as_dict()
        data["dry_run"] = dry_run
        print(dump_json(data))
        return
    verb = "would change" if dry_run else ("changed" if change.written else "unchanged:")
    if not dry_run and change.written:
        head = f"{change.operation}: {verb} {change.index} (generation {change.generation})"
    elif dry_run:
        would = change.added or change.replaced or change.deleted
        head = (f"{change.operation} --dry-run: {verb if would else 'nothing would change in'} "
                f"{change.index} (nothing was written)")
    else:
        head = f"{change.operation}: {verb} {change.index} (nothing to do, nothing written)"
    rows = [("added", f"{change.added:,}"), ("replaced", f"{change.replaced:,}"),
            ("deleted", f"{change.deleted:,}")]
    if change.operation == "update":
        rows.append(("unchanged", f"{change.unchanged:,}"))
    rows += [("documents", f"{change.documents:,}"),
             ("generation", str(change.generation)),
             ("seconds", f"{change.seconds:.2f}")]
    skipped = change.read_stats.get("skipped") if change.read_stats else None
    if skipped:
        rows.append(("skipped files", ", ".join(f"{n} {r}" for r, n in sorted(skipped.items()))))
    if change.kept_unreadable:
        more = (f" (and {len(change.kept_unreadable) - 3} more)"
                if len(change.kept_unreadable) > 3 else "")
        rows.append(("kept unreadable", ", ".join(change.kept_unreadable[:3]) + more))
    print(head)
    print(format_table(("", ""), rows, align="ll").split("\n", 2)[2])
