"""Module-level app for `celery -A workers.flower_app flower` (what `coord flower` runs)."""

from workers.app import create_app

app = create_app()
