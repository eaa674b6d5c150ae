"""SQLAlchemy adapter: tables, engine/session setup, and the stores that apply core decisions."""
