"""Read models shared by the CLI and the REST API: `runs.py` (run lists with totals, run detail),
`pipelines.py` (the pipeline list and a pipeline's run grid). JSON-ready dicts, no business rule."""
