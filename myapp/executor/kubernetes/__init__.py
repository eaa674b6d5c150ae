"""The Kubernetes executor's glue (docs/kubernetes.md, docs/decisions/0012): where the database and
the cluster meet. `launch.py` claims an attempt and creates its objects, `pod_plan.py` turns it into
manifests, `pod_watch.py` runs the watcher process, `pod_attempts.py` is its database side,
`pod_finish.py` + `pod_outputs.py` end an attempt, `watcher_health.py` feeds /health. The
Kubernetes API itself (no database) is myapp/k8s/.
"""
