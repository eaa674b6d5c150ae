"""Celery adapter: the app, its tasks (thin: ids in, one use-case call) and the worker/beat entry points."""
