"""The pure domain core: states, pipeline model, DAG, scheduling and rendering.

Nothing in this package performs I/O or imports SQLAlchemy, Celery, kubernetes or Flask;
`tests/unit/core/test_purity.py` enforces it in a fresh interpreter.
"""
