"""Alembic migrations of the workflow database (run with :func:`stocktailor.workflow.upgrade`)."""
