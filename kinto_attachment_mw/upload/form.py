"""Streaming parse of an upload's multipart/form-data body.

The body goes through ``multipart``'s push parser chunk by chunk. The file part flows
into a sink opened by the caller as soon as its headers are known (so the extension is
checked before a byte is stored); the small ``data`` and ``permissions`` fields are kept,
and checked to be JSON objects as soon as each is complete.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import multipart as multipart_lib

from ..protocol import errors
from ..protocol.errors import Errno
from ..protocol.json_depth import too_deep, too_deep_message
from ..protocol.paths import ATTACHMENT_FIELD
from .body import TruncatedBody
from .sinks import ByteSink

FORM_FIELDS = ("data", "permissions")

#: Bytes allowed for everything but the file: the form fields, part headers, boundaries.
MAX_FORM_OVERHEAD = 1024 * 1024 + 64 * 1024
_MAX_FIELD_BYTES = 1024 * 1024
_MAX_PARTS = 8


@dataclass(frozen=True)
class FilePart:
    filename: str
    content_type: str | None


@dataclass
class UploadForm:
    #: ``data`` and ``permissions``, each a JSON object.
    fields: dict[str, dict] = field(default_factory=dict)
    file: FilePart | None = None


def multipart_boundary(content_type: str) -> str:
    """The boundary of a ``multipart/form-data`` Content-Type, or a 400."""
    mimetype, options = multipart_lib.parse_options_header(content_type or "")
    if mimetype != "multipart/form-data":
        raise errors.bad_request(
            Errno.INVALID_PARAMETERS, "Content-Type should be multipart/form-data"
        )
    boundary = options.get("boundary", "")
    if not boundary or len(boundary) > 200 or "\r" in boundary or "\n" in boundary:
        raise _broken("missing or invalid boundary in Content-Type")
    return boundary


def _broken(reason: str) -> errors.AttachmentError:
    return errors.bad_request(
        Errno.INVALID_PARAMETERS, f"Invalid multipart/form-data body: {reason}"
    )


def parse_form(
    chunks: Iterable[bytes],
    boundary: str,
    open_file: Callable[[FilePart], ByteSink],
) -> UploadForm:
    """Consume the body; stream the file part into ``open_file(part)``'s sink.

    Raises :class:`~kinto_attachment_mw.protocol.errors.AttachmentError` for anything a client got
    wrong. Whatever ``open_file`` opened is the caller's to commit or abort.
    """
    form = UploadForm()
    sink: ByteSink | None = None
    field_name: str | None = None
    field_value = bytearray()
    try:
        # Not strict: its only extra refusals are of a preamble and an epilogue, which
        # RFC 2046 allows (and an epilogue split off in its own chunk would be refused).
        with multipart_lib.PushMultipartParser(boundary, max_segment_count=_MAX_PARTS) as parser:
            for chunk in chunks:
                for event in parser.parse(chunk):
                    if isinstance(event, multipart_lib.MultipartSegment):
                        if event.name == ATTACHMENT_FIELD and event.filename is not None:
                            form.file = _start_file(form, event)
                            sink = open_file(form.file)
                        else:
                            field_name = _start_field(form, event)
                            field_value.clear()
                    elif event is None:  # end of the current part
                        if field_name is not None:
                            form.fields[field_name] = _json_object(field_name, field_value)
                        field_name, sink = None, None
                    elif sink is not None:
                        sink.write(event)
                    else:
                        field_value += event
                        if len(field_value) > _MAX_FIELD_BYTES:
                            raise errors.bad_request(
                                Errno.INVALID_POSTED_DATA,
                                f"body: {field_name!r} is larger than {_MAX_FIELD_BYTES} bytes",
                            )
            for _ in parser.parse(b""):
                pass
    except multipart_lib.MultipartError as error:
        raise _broken(str(error).rstrip(".")) from error
    except TruncatedBody as error:
        raise _broken(f"truncated body ({error})") from error
    if form.file is None:
        raise errors.attachment_missing(list(form.fields))
    return form


def _start_file(form: UploadForm, segment: multipart_lib.MultipartSegment) -> FilePart:
    if form.file is not None:
        raise errors.invalid_body("Only one file can be attached.")
    if not segment.filename:
        raise errors.invalid_body("Filename is required.")
    # The header as sent, for one parser to say what it is (:mod:`..protocol.media_types`);
    # two of them say nothing for sure (the name's type is taken).
    declared = [value for name, value in segment.headerlist if name == "Content-Type"]
    return FilePart(segment.filename, declared[0] if len(declared) == 1 else None)


def _start_field(form: UploadForm, segment: multipart_lib.MultipartSegment) -> str:
    name = segment.name or ""
    if name == ATTACHMENT_FIELD:  # an 'attachment' part sent as a plain field, without filename
        raise errors.invalid_body("Filename is required.")
    if name not in FORM_FIELDS and segment.filename is not None and form.file is None:
        # A file, but not where the plugin's API expects it (``-F file=@x``).
        raise errors.attachment_missing([*form.fields, name])
    if name not in FORM_FIELDS:
        raise errors.bad_request(
            Errno.INVALID_POSTED_DATA, f"body: {name!r} not in ('data', 'permissions')"
        )
    if segment.filename is not None:
        raise errors.bad_request(
            Errno.INVALID_POSTED_DATA,
            f"body: {name!r} field should be passed as form data, not files",
        )
    if name in form.fields:
        raise errors.bad_request(Errno.INVALID_POSTED_DATA, f"body: {name!r} given twice")
    return name


def _json_object(name: str, value: bytearray) -> dict:
    """A form field as the JSON object it must be; refused as soon as it is complete."""
    try:
        parsed = json.loads(
            value.decode("utf-8"), parse_constant=_refuse_constant, parse_float=_finite_float
        )
    except RecursionError:
        parsed = None  # deeper than Python reads: deeper than allowed too
    except ValueError as error:  # UnicodeDecodeError is a ValueError
        raise errors.bad_request(
            Errno.INVALID_POSTED_DATA, f"body: {name} is not valid JSON ({error})"
        ) from None
    if parsed is None or too_deep(parsed):
        message = too_deep_message(f"The {name!r} field")
        raise errors.bad_request(Errno.INVALID_POSTED_DATA, f"body: {message}")
    if not isinstance(parsed, dict):
        raise errors.bad_request(Errno.INVALID_POSTED_DATA, f"body: {name} is not a JSON object")
    return parsed


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    """Python reads 1e999 as infinity, which Kinto (strict JSON) would then refuse."""
    number = float(text)
    if math.isinf(number):
        raise ValueError(f"{text} is out of range")
    return number
