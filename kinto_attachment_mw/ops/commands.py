"""``kinto-attachment-mw``: operator commands, run next to the Kinto deployment.

``kinto-attachment-mw gc --ini kinto.ini [--dry-run] [--grace 1h]``
``kinto-attachment-mw privatize --ini kinto.ini --server URL --auth USER:PASS --bucket B
[--collection C] [--public] [--dry-run]``
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence

from .gc import Listener, Report, collect_garbage

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}

#: Exit status when the ini names a backend gc cannot read from another process.
EXIT_REFUSED = 2


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``1h``, ``2d`` as seconds."""
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"expected a duration like 30m, 1h or 2d, got {text!r}")
    return float(match[1]) * _UNIT_SECONDS[match[2]]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kinto-attachment-mw")
    commands = parser.add_subparsers(dest="command", required=True)
    gc = commands.add_parser(
        "gc",
        help="remove stored files no record references; list records whose file is missing",
    )
    gc.add_argument("--ini", required=True, help="the Kinto ini file the server runs with")
    gc.add_argument(
        "--dry-run", action="store_true", help="report what would be removed, remove nothing"
    )
    gc.add_argument(
        "--grace",
        type=parse_duration,
        default=3600.0,
        help="keep files younger than this, which uploads in progress may still reference"
        " (default: 1h)",
    )
    privatize = commands.add_parser(
        "privatize",
        help="make the files of a bucket or collection private (or public again, --public):"
        " their ACL, then their records' location",
    )
    privatize.add_argument("--ini", required=True, help="the Kinto ini file the server runs with")
    privatize.add_argument(
        "--server",
        required=True,
        help="the API's URL as clients reach it (private locations are written under it)",
    )
    privatize.add_argument(
        "--auth", required=True, help="user:password or 'Bearer TOKEN' of a record writer"
    )
    privatize.add_argument("--bucket", required=True)
    privatize.add_argument("--collection", help="one collection (default: every one)")
    privatize.add_argument("--public", action="store_true", help="make them public again instead")
    privatize.add_argument(
        "--dry-run", action="store_true", help="report what would change, change nothing"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "privatize":
        return run_privatize(args)
    return run_gc(args.ini, args.grace, args.dry_run)


def run_privatize(args: argparse.Namespace) -> int:
    from ..config import ConfigurationError
    from ..tools.connection import parse_auth
    from ..tools.errors import ToolError
    from ..wsgi import load_app
    from .privacy import Listener, PrivacyChange, PrivacyError

    name = "kinto-attachment-mw privatize"
    try:
        app = load_app(args.ini)
        auth = parse_auth(args.auth)
    except (ConfigurationError, ToolError) as error:
        print(f"{name}: error: {error}", file=sys.stderr)
        return EXIT_REFUSED
    verb = "would make" if args.dry_run else "made"
    wanted = "public" if args.public else "private"
    change = PrivacyChange(
        app.storage,
        app.settings,
        args.server,
        auth,
        private=not args.public,
        dry_run=args.dry_run,
        listener=Listener(
            changed=lambda record, location: print(f"{verb} {wanted}: {record.uri} -> {location}"),
            left=lambda record, reason: print(f"left: {record.uri}: {reason}"),
            kept=lambda key: print(f"kept: {key}"),
        ),
    )
    try:
        report = change.run(args.bucket, args.collection)
    except (PrivacyError, OSError) as error:
        print(f"{name}: error: {error}", file=sys.stderr)
        return EXIT_REFUSED
    for resource in report.skipped_collections:
        print(f"skipped: {resource}: the ini does not make its files {wanted}")
    print(
        f"Records: {report.changed} {verb} {wanted}, {report.unchanged} already {wanted},"
        f" {report.copies} copies of other collections' files left as they are,"
        f" {report.outside} outside this storage, {report.failures} failed."
    )
    if report.former_kept:
        print(
            f"Former files kept, as they were, because they were shared with other records:"
            f" {report.former_kept}; run 'kinto-attachment-mw gc' to remove those no record"
            " references any more"
        )
    return 1 if report.failures else 0


def run_gc(ini_path: str, grace_seconds: float, dry_run: bool) -> int:
    from ..config import ConfigurationError
    from ..wsgi import load_app

    try:
        app = load_app(ini_path)
    except ConfigurationError as error:
        print(f"kinto-attachment-mw gc: error: {error}", file=sys.stderr)
        return EXIT_REFUSED
    if app.settings.kinto_in_memory:
        print(
            f"{ini_path}: Kinto's memory backend keeps records inside the server process,"
            " where this command cannot see them; with no record visible every file would"
            " look unreferenced. Refusing to run. (gc works with a database backend such as"
            " kinto.core.storage.postgresql.)",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    verb = "would remove" if dry_run else "removed"
    listener = Listener(
        orphan=lambda info: print(f"orphan: {info.key} ({info.size} bytes)"),
        dangling=lambda uri, location: print(f"dangling: {uri} -> {location}"),
        leftover=lambda info: print(f"leftover: {info.key} ({info.size} bytes)"),
    )
    report = collect_garbage(
        app.registry.storage,
        app.storage,
        grace_seconds,
        dry_run=dry_run,
        listener=listener,
        remover=app.remover,
    )
    print(summary(report, verb))
    if app.resumable is not None:
        expired = app.resumable.spool.sweep_expired(dry_run)
        print(f"Expired resumable uploads ({verb}): {expired}")
    return 1 if report.failures else 0


def summary(report: Report, verb: str) -> str:
    lines = [
        f"Records with an attachment: {report.records}"
        f" ({report.outside} outside this storage, ignored)",
        f"Stored files: {report.files}",
        f"Orphan files: {report.orphans} ({report.orphan_bytes} bytes)",
        f"Unreferenced files that keep_old_files keeps: {report.kept}",
        f"Leftovers of unfinished uploads: {report.leftovers} ({report.leftover_bytes} bytes)",
        f"Dangling records (location without a file): {report.dangling}",
    ]
    if report.dry_run:
        lines.append(f"Dry run: {verb} {report.orphans + report.leftovers} files.")
    else:
        freed = report.removed_bytes + report.leftover_bytes
        lines.append(
            f"{verb.capitalize()} {report.removed + report.leftovers} files, {freed} bytes freed."
        )
    if report.failures:
        lines.append(f"Could not remove {report.failures} orphan files (see the log).")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
