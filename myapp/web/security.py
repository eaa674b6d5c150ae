"""Sign-in hardening on Flask-AppBuilder: revocable sessions and tokens, login rate limit, password policy.

FAB keeps the session in a signed cookie and issues stateless JWTs, so on its own neither a copied
cookie nor a refresh token can be taken back (issue 13, B10/B11). This security manager adds:

- a **login id** (`lid`, random) per sign-in, kept in the session and in every token that sign-in
  issues (the browser's `/api/v1/me/` tokens carry the session's); signing out (the logout page or
  `POST /api/v1/me/logout`) records it in `revoked_logins`, and every request carrying it is refused;
- a **password fingerprint** (`pwv`, an HMAC of the stored password hash) in the session and the
  tokens: any password change, by whatever path (the API, FAB's pages, `flask fab reset-password`),
  invalidates every other session and token of that user at once;
- the **password policy** of myapp/core/secret_policy.py on every new or changed password (FAB's
  FAB_PASSWORD_COMPLEXITY_VALIDATOR hook, forms and API alike);
- FAB's `PUT /api/v1/security/users/N` no longer echoes the new password (load-only field);
- the API login counts failed attempts against the same per-address limit (Flask-Limiter) that
  AUTH_RATE_LIMITED puts on the login form.

Must not import the stores, the engine or the executors.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, current_app, g, has_request_context, jsonify, request, session
from flask_appbuilder.exceptions import PasswordComplexityValidationError
from flask_appbuilder.security.sqla.apis.user.api import UserApi
from flask_appbuilder.security.sqla.apis.user.schema import UserPutSchema
from flask_appbuilder.security.sqla.apis.user.validator import PasswordComplexityValidator
from flask_appbuilder.security.sqla.manager import SecurityManager
from flask_jwt_extended import get_jwt
from flask_login import user_logged_in
from marshmallow import fields
from sqlalchemy import delete, select

from myapp.core.secret_policy import SHIPPED_PASSWORDS, password_problem
from myapp.db.auth_tables import RevokedLogin

LID = "_myapp_lid"
PWV = "_myapp_pwv"
API_LOGIN_ENDPOINT = "SecurityApi.login"
REFRESH_ENDPOINT = "SecurityApi.refresh"


def password_validator(min_length: int) -> Any:
    """Return FAB's FAB_PASSWORD_COMPLEXITY_VALIDATOR: raise with the reason a password is refused."""

    def validate(password: str) -> None:
        problem = password_problem(password or "", min_length=min_length)
        if problem:
            raise PasswordComplexityValidationError(f"The password {problem}.")

    return validate


class _UserPutSchema(UserPutSchema):
    """FAB's user update schema, with the password accepted but never sent back."""

    password = fields.String(
        required=False,
        load_only=True,
        validate=[PasswordComplexityValidator()],
        metadata={"description": "The user's new password (never returned)"},
    )


class UserApiWithoutEcho(UserApi):
    """FAB's /api/v1/security/users/ whose PUT answer leaves out the new password."""

    edit_model_schema = _UserPutSchema()


class MyappSecurityManager(SecurityManager):
    """FAB's SQLAlchemy security manager with revocable sign-ins (see the module docstring)."""

    user_api = UserApiWithoutEcho

    # ----- wiring ------------------------------------------------------------------------
    def create_login_manager(self, app: Flask) -> Any:
        manager = super().create_login_manager(app)
        manager.user_loader(self.load_session_user)
        # FAB passes flask's `current_app` proxy: signals match on the real app object.
        user_logged_in.connect(self._stamp_session, current_app._get_current_object())  # type: ignore[attr-defined]
        return manager

    def create_jwt_manager(self, app: Flask) -> Any:
        manager = super().create_jwt_manager(app)
        manager.additional_claims_loader(self.token_claims)
        manager.token_in_blocklist_loader(self.is_token_revoked)
        manager.revoked_token_loader(
            lambda *_: (jsonify(message="Not authorized", reason="this sign-in was ended (logout)"), 401)
        )
        manager.user_lookup_error_loader(
            lambda *_: (
                jsonify(
                    message="Not authorized",
                    reason="the token no longer matches its user (password changed or user deactivated)",
                ),
                401,
            )
        )
        return manager

    # ----- sessions ----------------------------------------------------------------------
    def fingerprint(self, user: Any) -> str:
        """Return a short keyed digest of the user's stored password hash (changes with the password)."""
        key = str(current_app.config["SECRET_KEY"]).encode()
        return hmac.new(key, str(user.password or "").encode(), hashlib.sha256).hexdigest()[:20]

    def _stamp_session(self, sender: Any, user: Any, **_: Any) -> None:
        session[LID] = secrets.token_hex(16)
        session[PWV] = self.fingerprint(user)

    def load_session_user(self, pk: str) -> Any | None:
        """Flask-Login's user loader: the user, unless this session was signed out or the password changed."""
        user = self.load_user(pk)
        lid = session.get(LID)
        if user is None or not lid or not hmac.compare_digest(str(session.get(PWV, "")), self.fingerprint(user)):
            return None
        return None if self.is_revoked(str(lid)) else user

    def on_user_logout(self, user: Any) -> None:
        lid = session.pop(LID, None)
        session.pop(PWV, None)
        if lid:
            self.revoke(str(lid), getattr(user, "id", None))

    def reset_password(self, userid: Any, password: str) -> None:
        """Change a password (FAB's pages, `flask fab reset-password`); a user changing their own stays signed in."""
        super().reset_password(userid, password)
        if has_request_context() and str(session.get("_user_id", "")) == str(userid) and session.get(LID):
            session[PWV] = self.fingerprint(self.get_user_by_id(userid))

    # ----- tokens ------------------------------------------------------------------------
    def token_claims(self, identity: Any) -> dict[str, str]:
        """Return the claims every new JWT gets: its login id and the password fingerprint."""
        user = self.get_user_by_id(int(identity))
        return {"lid": self._login_id(identity), "pwv": self.fingerprint(user) if user is not None else ""}

    def _login_id(self, identity: Any) -> str:
        if session.get(LID) and str(session.get("_user_id", "")) == str(identity):
            return str(session[LID])  # /api/v1/me/: the browser session's own
        if request.endpoint == REFRESH_ENDPOINT:
            lid = get_jwt().get("lid")  # /api/v1/security/refresh: the refresh token's
            if lid:
                return str(lid)
        # A login: its access and refresh tokens share one (kept on the request, not on `g`: an
        # application context, hence `g`, may outlive one request).
        return str(request.environ.setdefault("myapp.new_lid", secrets.token_hex(16)))

    def load_user_jwt(self, _jwt_header: Any, jwt_data: dict[str, Any]) -> Any | None:
        user = self.load_user(jwt_data["sub"])
        if user is None or not hmac.compare_digest(str(jwt_data.get("pwv", "")), self.fingerprint(user)):
            return None
        g.user = user
        return user

    def is_token_revoked(self, _jwt_header: Any, jwt_data: dict[str, Any]) -> bool:
        lid = jwt_data.get("lid")
        return not lid or self.is_revoked(str(lid))

    # ----- the revocation list -----------------------------------------------------------
    def is_revoked(self, lid: str) -> bool:
        """Return whether sign-in `lid` was ended (asked once per request)."""
        cache: dict[str, bool] = request.environ.setdefault("myapp.revoked", {})
        if lid not in cache:
            cache[lid] = self.session.scalar(select(RevokedLogin.lid).where(RevokedLogin.lid == lid)) is not None
        return cache[lid]

    def revoke(self, lid: str, user_id: int | None) -> None:
        """End sign-in `lid`: its session and tokens are refused from now on; forget expired entries."""
        now = datetime.now(UTC)
        keep = max(current_app.permanent_session_lifetime, _as_delta(current_app.config["JWT_REFRESH_TOKEN_EXPIRES"]))
        self.session.execute(delete(RevokedLogin).where(RevokedLogin.expires_at < now))
        if self.session.get(RevokedLogin, lid) is None:
            self.session.add(RevokedLogin(lid=lid, user_id=user_id, revoked_at=now, expires_at=now + keep))
        self.session.commit()
        request.environ.setdefault("myapp.revoked", {})[lid] = True


def admins_with_shipped_passwords(sm: Any) -> list[str]:
    """Return the active admins whose password is one our files suggest (checked at start in production)."""
    from werkzeug.security import check_password_hash

    admin_role = current_app.config.get("AUTH_ROLE_ADMIN", "Admin")
    found = []
    for user in sm.get_all_users():
        if user.is_active and user.password and any(r.name == admin_role for r in user.roles):
            if any(check_password_hash(user.password, p) for p in SHIPPED_PASSWORDS):
                found.append(str(user.username))
    return found


def _as_delta(value: Any) -> timedelta:
    return value if isinstance(value, timedelta) else timedelta(seconds=int(value or 0))


def limit_api_login(app: Flask, rate: str) -> None:
    """Count failed API logins against `rate` per client address, like AUTH_RATE_LIMITED on the form."""
    view = app.view_functions.get(API_LOGIN_ENDPOINT)
    if view is None:
        return
    limiter = app.appbuilder.sm.limiter  # type: ignore[attr-defined]
    app.view_functions[API_LOGIN_ENDPOINT] = limiter.limit(
        rate, methods=["POST"], deduct_when=lambda response: response.status_code == 401
    )(view)

    @app.errorhandler(429)
    def too_many(exc: Any) -> Any:
        message = "too many sign-in attempts from this address; wait a minute and try again"
        if request.path.startswith("/api/"):
            return jsonify(message=message), 429
        return f"<h1>Too many requests</h1><p>{message}.</p>", 429
