"""``kinto-attachment upload|download``: argument parsing and exit codes.

Exit codes: 0 all went well, 1 some files failed, 2 nothing could be done (bad
arguments, unreachable server, refused credentials, unknown bucket or collection).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .connection import Remote
from .download import Downloader
from .errors import ToolError
from .resumable import DEFAULT_STATE, UploadState
from .upload import Uploader


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", default="http://127.0.0.1:8888/v1", help="Kinto URL")
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--collection", required=True)
    parser.add_argument(
        "--auth", required=True, help="user:password, token:secret or 'Bearer TOKEN'"
    )
    parser.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        default=None,
        help="hide progress bars (shown when stderr is a terminal)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kinto-attachment", description="Upload and download Kinto attachments."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    upload = commands.add_parser("upload", help="upload files, one record each")
    _common(upload)
    upload.add_argument("--gzip", action="store_true", help="compress before uploading")
    upload.add_argument("--force", action="store_true", help="upload even unchanged files")
    upload.add_argument(
        "--id-from",
        choices=("name", "hash"),
        default="name",
        help="derive record ids from file names (default) or contents",
    )
    upload.add_argument(
        "--resumable",
        action="store_true",
        help="send files with tus, in pieces: a run cut short goes on where it stopped",
    )
    upload.add_argument(
        "--state",
        type=Path,
        default=DEFAULT_STATE,
        help=f"where --resumable keeps unfinished uploads (default: {DEFAULT_STATE})",
    )
    upload.add_argument("files", nargs="+", type=Path, metavar="FILE")

    download = commands.add_parser("download", help="download every attachment")
    _common(download)
    download.add_argument("--folder", type=Path, default=Path("."), help="target folder")
    return parser


def run(args: argparse.Namespace) -> int:
    remote = Remote(args.server, args.bucket, args.collection, args.auth)
    if args.command == "upload":
        if args.resumable and args.gzip:
            raise ToolError("--resumable and --gzip: one or the other")
        state = UploadState(args.state) if args.resumable else None
        tool = Uploader(
            remote, gzip=args.gzip, force=args.force, id_from=args.id_from, resumable=state
        )
        summary = tool.run(args.files, args.progress)
    else:
        summary = Downloader(remote, args.folder).run(args.progress)
    print(summary.line())
    return summary.exit_code()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except ToolError as exc:
        print(f"kinto-attachment {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"kinto-attachment {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
