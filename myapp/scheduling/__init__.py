"""The scheduler use-case (docs/scheduling.md): passes, their batches, the backfill guard.

`scheduler.py` claims due pipelines and plans each with core/schedule.py, `batch.py` writes one
batch of a pass's decisions, `backfill_guard.py` refuses a save or enable whose catch-up is above
`backfill_confirm`. A cron expression in words is core/cron_text.py.
"""
