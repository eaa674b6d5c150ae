"""Executors: how one attempt runs (local process group, Kubernetes pod) and the claim/finish loop."""
