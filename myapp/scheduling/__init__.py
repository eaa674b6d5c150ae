"""The scheduler use-case (docs/scheduling.md): passes, their batches, the backfill guard, cron in words.

`scheduler.py` claims due pipelines and plans each with core/schedule.py, `batch.py` writes one
batch of a pass's decisions, `backfill_guard.py` refuses a save or enable whose catch-up is above
`backfill_confirm`, `cron_text.py` says a cron expression in words for the pipeline list.
"""
