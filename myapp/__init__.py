"""myapp: a pipeline scheduler daemon for ML and data pipelines on Kubernetes or local processes."""

__version__ = "0.1.0"
