"""One parser for every source of a file's type: what a type is, not how it is spelled."""

from __future__ import annotations

import pytest

from kinto_attachment_mw.protocol.media_types import MAX_LENGTH, is_active, normalized, parse

pytestmark = pytest.mark.unit

#: Types browsers render or run, in the spellings that got past string comparisons.
ACTIVE = [
    pytest.param("text/html", id="html"),
    pytest.param("text/html; charset=utf-8", id="html-charset"),
    pytest.param("TEXT/HTML", id="html-upper"),
    pytest.param('  Text/Html ;charset="UTF-8"', id="html-spaces-quoted"),
    pytest.param("image/svg+xml;x=1", id="svg-parameter"),
    pytest.param("application/xhtml+xml", id="xhtml"),
    pytest.param("application/vnd.wap.xhtml+xml", id="wap-xhtml"),
    pytest.param("application/foo+xml", id="any-xml-suffix"),
    pytest.param("application/xml", id="application-xml"),
    pytest.param("text/xml", id="text-xml"),
    pytest.param("text/xsl", id="xsl"),
    pytest.param("application/xslt+xml", id="xslt"),
    pytest.param("multipart/x-mixed-replace", id="mixed-replace"),
    pytest.param("multipart/related; boundary=x", id="multipart-related"),
    pytest.param("text/cache-manifest", id="cache-manifest"),
    pytest.param("application/pdf", id="pdf"),
    pytest.param("application/x-shockwave-flash", id="flash"),
    *(
        pytest.param(spelling, id=spelling)
        for spelling in (
            "application/javascript",
            "application/ecmascript",
            "application/x-javascript",
            "application/x-ecmascript",
            "text/javascript",
            "text/ecmascript",
            "text/javascript1.0",
            "text/javascript1.5",
            "text/jscript",
            "text/livescript",
            "text/x-javascript",
            "text/x-ecmascript",
            "TEXT/JavaScript; charset=utf-8",
        )
    ),
]

PASSIVE = [
    pytest.param("text/plain", id="text"),
    pytest.param("image/png", id="png"),
    pytest.param("text/csv; charset=utf-8", id="csv"),
    pytest.param("application/json", id="json"),
    pytest.param("application/geo+json", id="json-suffix"),
    pytest.param("application/octet-stream", id="octet-stream"),
    pytest.param("application/vnd.fluent", id="vendor"),
    pytest.param("text/css", id="css"),
]

INVALID = [
    pytest.param("", id="empty"),
    pytest.param("html", id="no-slash"),
    pytest.param("/html", id="no-type"),
    pytest.param("text/", id="no-subtype"),
    pytest.param("text/*", id="range"),
    pytest.param("*/*", id="any-range"),
    pytest.param("text/plain,text/html", id="comma-list"),
    pytest.param('text/plain;x="a,text/html"', id="comma-quoted"),
    pytest.param('text/plain;x="a\\"b"', id="escaped-quote"),
    pytest.param("text/html\r\nX-Injected: 1", id="crlf"),
    pytest.param("text/plain\x00", id="nul"),
    pytest.param("text/plain;\tcharset=utf-8", id="tab"),
    pytest.param("text/pl ain", id="space-in-subtype"),
    pytest.param("text/plain;charset", id="parameter-without-value"),
    pytest.param("text/plaïn", id="non-ascii"),
    pytest.param("text/" + "x" * MAX_LENGTH, id="too-long"),
    pytest.param(None, id="none"),
    pytest.param(42, id="number"),
]


@pytest.mark.parametrize("value", ACTIVE)
def test_types_browsers_render_or_run_are_active_however_spelled(value):
    assert parse(value) is not None
    assert is_active(value)


@pytest.mark.parametrize("value", PASSIVE)
def test_types_browsers_only_show_or_save_are_not(value):
    assert parse(value) is not None
    assert not is_active(value)


@pytest.mark.parametrize("value", INVALID)
def test_what_is_no_media_type_is_refused(value):
    assert parse(value) is None
    assert normalized(value) is None


@pytest.mark.parametrize(
    "value,stored",
    [
        pytest.param("TEXT/HTML; Charset=UTF-8", "text/html;charset=utf-8", id="case"),
        pytest.param(
            'text/plain ; format=flowed; charset="utf-8"',
            "text/plain;charset=utf-8",
            id="others-dropped",
        ),
        pytest.param("image/svg+xml;x=1", "image/svg+xml", id="unlooked-at-dropped"),
        pytest.param("text/plain;charset=utf-7", "text/plain", id="utf-7-dropped"),
        pytest.param("text/plain;charset=a<b", None, id="bad-charset-token"),
    ],
)
def test_the_stored_form_keeps_only_what_was_looked_at(value, stored):
    assert normalized(value) == stored


def test_suffixes_are_structured_syntax():
    assert parse("image/svg+xml").suffix == "xml"
    assert parse("application/ld+json").suffix == "json"
    assert parse("application/ld+json").is_json
    assert parse("application/+xml").suffix == "xml"  # browsers: a subtype ending in +xml
    assert parse("application/+xml").active
    assert parse("text/plain").suffix is None
