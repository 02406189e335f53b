"""Alembic migrations of idp (packaged so that an installed `idp db upgrade` finds them)."""
