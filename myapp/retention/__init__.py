"""Retention: `clean.py` is `myapp db clean` and the daily `retention_days` policy (the cutoff is
decided in core/retention.py, the batched deletes are in db/retention_store.py)."""
