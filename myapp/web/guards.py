"""Request-level defences that hold for every endpoint, before any view runs (issue 13, B12/B14/B17).

- **Hostile input** (`refuse_hostile_input`): a NUL character anywhere in the path, the query, a
  form or a body (PostgreSQL cannot store one: it used to be a 500 in ten places), and JSON nested
  deeper than MAX_NESTING (the YAML reader's limit too: a stored pipeline must always export)
  answer 400 naming what was refused.
- **Cross-site writes** (`refuse_cross_site_writes`): an API write (POST, PUT, PATCH, DELETE under
  /api/) authenticated by the session cookie must come from a page of this site: its Origin (or,
  without one, its Referer) must name this host or one of `web_trusted_origins`. Bearer-token
  clients (the pages' own calls, scripts) send no cookie-only credential and are not affected.
- **Security headers** (`add_security_headers`, Flask-Talisman): a Content-Security-Policy with
  per-request script nonces (FAB's templates and ours carry them) and `frame-ancestors 'none'`,
  X-Frame-Options DENY, X-Content-Type-Options nosniff, Referrer-Policy; Secure/HttpOnly/SameSite
  session cookies in production.

Must not import the stores, the engine or the executors.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, jsonify, request, session
from flask_talisman import Talisman

from myapp.core.nesting import MAX_NESTING, nesting_problem

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSP = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self' 'unsafe-inline'",  # React Flow and FAB position nodes with style attributes
    "img-src": "'self' data: blob:",
    "font-src": "'self' data:",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


def _refused(message: str, status: int = 400) -> Any:
    return jsonify(message=message), status


def _has_nul(values: Iterable[str]) -> bool:
    return any("\x00" in value for value in values)


def refuse_hostile_input(app: Flask) -> None:
    """Answer NUL characters and over-deep JSON with 400 before any view or query sees them."""

    @app.before_request
    def _guard() -> Any:
        if "\x00" in request.path or _has_nul(k + v for k, v in request.args.items(multi=True)):
            return _refused("the URL contains a NUL character (\\u0000), which is never valid here")
        if request.method not in UNSAFE_METHODS:
            return None
        if request.is_json:
            return _check_json()
        if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            if _has_nul(k + v for k, v in request.form.items(multi=True)):
                return _refused("a form field contains a NUL character (\\u0000)")
            return None
        if b"\x00" in request.get_data(cache=True):
            return _refused("the body contains a NUL byte; send text (YAML or JSON)")
        return None


def _check_json() -> Any:
    try:
        data = request.get_json(silent=True)
    except RecursionError:
        return _refused(f"the JSON body is nested deeper than {MAX_NESTING} levels")
    problem = nesting_problem(data)
    return _refused(f"the JSON body {problem}") if problem else None


def refuse_cross_site_writes(app: Flask, trusted_origins: str) -> None:
    """Refuse cookie-authenticated API writes whose Origin/Referer is not this site (CSRF)."""
    trusted = {o.strip().rstrip("/").lower() for o in trusted_origins.split(",") if o.strip()}

    @app.before_request
    def _guard() -> Any:
        if request.method not in UNSAFE_METHODS or not request.path.startswith("/api/"):
            return None
        if request.headers.get("Authorization") or "_user_id" not in session:
            return None  # a bearer token (never sent by a browser on its own) or no session: not CSRF
        source = request.headers.get("Origin") or request.headers.get("Referer") or ""
        if is_same_site(source, request.host, trusted):
            return None
        return _refused(
            "cross-site request refused: an API write signed in by the session cookie must come "
            "from this site's pages (Origin or Referer); scripts should send a bearer token",
            403,
        )


def is_same_site(source: str, host: str, trusted: set[str]) -> bool:
    """Return whether an Origin or Referer URL names `host` (the request's Host) or a trusted origin."""
    if not source or source == "null":
        return False
    parts = urlsplit(source)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    return parts.netloc.lower() == host.lower() or f"{parts.scheme}://{parts.netloc}".lower() in trusted


def add_security_headers(app: Flask, *, production: bool) -> None:
    """Send the security headers on every answer and set the session cookie's flags."""
    app.config.update(
        SESSION_COOKIE_SECURE=production,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=production,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
    )
    Talisman(
        app,
        force_https=False,
        strict_transport_security=production,
        session_cookie_secure=production,
        session_cookie_http_only=True,
        session_cookie_samesite="Lax",
        frame_options="DENY",
        content_security_policy=CSP,
        content_security_policy_nonce_in=["script-src"],
        referrer_policy="strict-origin-when-cross-origin",
        x_content_type_options=True,
    )

    @app.after_request
    def _no_store_api(response: Any) -> Any:
        if request.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response
