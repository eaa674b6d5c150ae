"""The Kubernetes edge of myapp (docs/rules.md P5 `kubernetes`, issue 5).

`manifest.py` and `entrypoint.py` are pure: an attempt's plan becomes pod, service and resource
manifests as plain dicts. `launcher.py` only creates, reads and deletes, turning 404/409 into
domain results. `stream.py` lists and watches (resuming after 410 Gone), `watcher.py` turns pod
changes into attempt outcomes, `logs.py` aggregates container logs, `events.py` and `pods.py`
parse what the API server reports. Nothing here imports SQLAlchemy, Celery or Flask: the database
side is reached through the ports declared in `watcher.py` (implemented in myapp/executor/).
"""
