"""Tables of sign-in state that Flask-AppBuilder does not keep: revoked logins.

A "login" is one sign-in: a browser session, or an API login's access and refresh tokens; its
random id (`lid`) is in the session cookie and in every token it issued. Signing out adds the id
here until the longest-lived credential carrying it has expired. Holds no business rule.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from myapp.db.base import Base
from myapp.db.types import UTCDateTime


class RevokedLogin(Base):
    __tablename__ = "revoked_logins"
    lid: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="CASCADE"), nullable=True)
    revoked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
