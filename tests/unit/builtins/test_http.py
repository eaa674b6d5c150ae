"""The `http` built-in: status patterns, headers, requests and what it reports (no network here)."""

from __future__ import annotations

import pytest

from myapp.builtins.http import build_parser, build_request, report
from myapp.builtins.http_call import Request, Response, parse_expected_status, parse_headers, send, status_matches
from tests.factories import builtin_templates


@pytest.mark.parametrize(
    ("text", "status", "ok"),
    [
        ("200", 200, True),
        ("200", 201, False),
        ("200,201", 201, True),
        ("2xx", 204, True),
        ("2XX", 299, True),
        ("2xx", 302, False),
        ("4xx,200", 404, True),
        (" 200 , 5xx ", 503, True),
    ],
)
def test_status_patterns(text: str, status: int, ok: bool) -> None:
    assert status_matches(status, parse_expected_status(text)) is ok


@pytest.mark.parametrize("text", ["", "ok", "600", "2x", "20", "200,,abc"])
def test_bad_status_patterns(text: str) -> None:
    with pytest.raises(ValueError):
        parse_expected_status(text)


def test_headers_are_a_json_object() -> None:
    assert parse_headers('{"Accept": "text/plain", "X-N": 1}') == {"Accept": "text/plain", "X-N": "1"}
    assert parse_headers("") == {}
    with pytest.raises(ValueError):
        parse_headers("[1]")


def test_request_from_arguments_puts_the_token_in_a_header() -> None:
    args = build_parser().parse_args(
        [
            "--url=http://h/x",
            "--method=post",
            "--body={}",
            "--token=s3cret",
            '--headers={"Content-Type": "application/json"}',
            "--timeout=5",
        ]
    )
    req = build_request(args)
    assert (req.method, req.body, req.timeout) == ("POST", b"{}", 5.0)
    assert req.headers == {"Content-Type": "application/json", "Authorization": "Bearer s3cret"}


def test_report_checks_the_status_and_never_prints_the_token(capsys: pytest.CaptureFixture[str]) -> None:
    req = Request(url="http://h/x", headers={"Authorization": "Bearer s3cret"})
    assert report(Response(200, b"hello"), req, ("200",)) == 0
    assert report(Response(500, b"boom"), req, ("2xx",)) == 1
    assert report(Response(0, error="URLError: refused"), req, ("200",)) == 1
    out = capsys.readouterr()
    assert "-> 200 (5 bytes)" in out.out and "hello" in out.out
    assert "status 500 is not the expected 2xx" in out.err and "refused" in out.err
    assert "s3cret" not in out.out + out.err


def test_only_http_urls_are_sent() -> None:
    assert send(Request(url="file:///etc/passwd")).error.endswith("is not an http:// or https:// URL")


def test_the_http_template_declares_its_schema() -> None:
    http = next(t for t in builtin_templates() if t.name == "http")
    assert http.command == ("python3", "-m", "myapp.builtins.http")
    assert {p.name: p.type for p in http.parameters} == {
        "url": "string",
        "method": "choice",
        "expect_status": "string",
        "body": "text",
        "headers": "json",
        "timeout": "number",
        "token": "secret",
    }
    assert [(o.name, o.type) for o in http.outputs] == [("status", "text"), ("body", "file")]
    assert http.readme.startswith("# http")
