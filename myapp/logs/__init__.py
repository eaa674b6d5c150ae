"""Attempt logs (`attempt_logs.py`): live file + Redis while running, archived after; the one stored
line format. Container log streams from the Kubernetes API are k8s/logs.py."""
