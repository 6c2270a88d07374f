"""Maintenance jobs: stale-connection sweep and retention cleanup, one process at a time."""
