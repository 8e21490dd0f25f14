"""Media types (``type/subtype; name=value``), parsed once and judged by what they are.

Every source of a file's type goes through :func:`parse`: a multipart part's
``Content-Type``, a tus upload's ``filetype``, the ``mimetypes`` setting, and the
``mimetype`` a client writes into a record. A browser decides how to treat a file from
the type's essence (``text/html``, whatever its case or parameters), so that is what
:attr:`MediaType.active` judges, and what is stored is the essence again, with only the
``charset`` kept (:meth:`MediaType.normalized`): never a parameter nobody looked at.

The grammar is RFC 9110's (tokens, quoted strings), stricter where browsers read a
header differently from it: a comma anywhere (Fetch splits ``Content-Type`` on commas
and takes the last type), a backslash, a control character, or a range (``*``) make
the type invalid rather than guessed at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: The longest type accepted (the longest registered one is under 100 characters).
MAX_LENGTH = 255


_TCHARS = r"[!#$%&'+.^_`|~0-9A-Za-z-]+"
#: ``; name=value``, the value a token or a quoted string of printable ASCII without
#: escapes (``\"`` is read differently by different parsers) and without commas.
_PARAMETER = re.compile(rf'[ ]*;[ ]*(?P<name>{_TCHARS})=(?P<value>{_TCHARS}|"[ !#-+\--\[\]-~]*")')
_CHARSET = re.compile(r"[a-z0-9][a-z0-9._:-]{0,39}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

#: JavaScript under every name browsers run it with (the WHATWG MIME Sniffing list).
_JAVASCRIPT = frozenset(
    f"{kind}/{name}"
    for kind, name in (
        ("application", "ecmascript"),
        ("application", "javascript"),
        ("application", "x-ecmascript"),
        ("application", "x-javascript"),
        ("text", "ecmascript"),
        ("text", "javascript"),
        *(("text", f"javascript1.{minor}") for minor in range(6)),
        ("text", "jscript"),
        ("text", "livescript"),
        ("text", "x-ecmascript"),
        ("text", "x-javascript"),
    )
)
#: Other types a browser renders as a document, or runs: markup and style sheets that
#: transform it, PDF (a document with scripts of its own), plug-ins, legacy components.
_RENDERED = frozenset(
    {
        "text/html",
        "text/xsl",
        "text/cache-manifest",
        "text/x-component",
        "application/pdf",
        "application/x-pdf",
        "application/xml-dtd",
        "application/hta",
        "application/x-shockwave-flash",
        "application/futuresplash",
    }
)


@dataclass(frozen=True)
class MediaType:
    """A parsed media type: lower-cased ``type`` and ``subtype``, the parameters in
    order (names lower-cased, values unquoted)."""

    type: str
    subtype: str
    parameters: tuple[tuple[str, str], ...] = ()

    @property
    def essence(self) -> str:
        return f"{self.type}/{self.subtype}"

    @property
    def suffix(self) -> str | None:
        """The structured syntax suffix (``xml`` of ``image/svg+xml``), if any."""
        _, plus, suffix = self.subtype.rpartition("+")
        return suffix if plus else None

    @property
    def is_xml(self) -> bool:
        return self.subtype in ("xml", "xml-external-parsed-entity") or self.suffix == "xml"

    @property
    def is_json(self) -> bool:
        return self.subtype == "json" or self.suffix == "json"

    @property
    def active(self) -> bool:
        """Whether a browser served this type renders the file as a document or runs
        it (any HTML, XML, SVG, XSL, script, PDF, ``multipart/*``...), rather than only
        showing it (images, text, data) or saving it."""
        return (
            self.essence in _RENDERED
            or self.essence in _JAVASCRIPT
            or self.is_xml
            or self.type == "multipart"
        )

    @property
    def charset(self) -> str | None:
        """The ``charset`` parameter when it names one plainly (``utf-7``, which some
        browsers ran as script, never)."""
        value = dict(self.parameters).get("charset", "").lower()
        if not _CHARSET.fullmatch(value) or value.replace("-", "").startswith("utf7"):
            return None
        return value

    def normalized(self) -> str:
        """What is stored: the essence, and the charset when there is a plain one."""
        charset = self.charset
        return f"{self.essence};charset={charset}" if charset else self.essence

    def __str__(self) -> str:
        return self.normalized()


def _token(text: str) -> bool:
    return re.fullmatch(_TCHARS, text) is not None


def parse(value: object) -> MediaType | None:
    """``value`` as a media type; ``None`` when it is not one (not a string, too long,
    a control character, a bad token or parameter, a range such as ``text/*``)."""
    if not isinstance(value, str) or len(value) > MAX_LENGTH or _CONTROL.search(value):
        return None
    text = value.strip(" ")
    kind, slash, rest = text.partition("/")
    subtype_end = rest.find(";")
    subtype = (rest if subtype_end < 0 else rest[:subtype_end]).rstrip(" ")
    if not slash or not _token(kind) or not _token(subtype):
        return None
    if "*" in kind or "*" in subtype:
        return None
    parameters = []
    remainder = "" if subtype_end < 0 else rest[subtype_end:]
    position = 0
    while position < len(remainder):
        found = _PARAMETER.match(remainder, position)
        if found is None:
            if remainder[position:].strip(" ;"):
                return None
            break
        parameters.append((found["name"].lower(), found["value"].strip('"')))
        position = found.end()
    return MediaType(kind.lower(), subtype.lower(), tuple(parameters))


def normalized(value: object) -> str | None:
    """The stored form of ``value`` (:meth:`MediaType.normalized`), ``None`` when it
    is no media type."""
    parsed = parse(value)
    return parsed.normalized() if parsed is not None else None


def is_active(value: object) -> bool:
    """Whether ``value``, read as browsers read it, is a type they render or run. What
    cannot be parsed is not judged here (callers refuse or replace it)."""
    parsed = parse(value)
    return parsed is not None and parsed.active
