"""The built-in templates' own code (docs/rules.md P6): small entrypoints and pure builders.

Entrypoints run inside a task's process or pod and use the standard library only:
`python3 -m myapp.builtins.http` (call a URL, check the status, write the body) and
`python3 -m myapp.builtins.wait_for` (poll a URL or a myapp run until a condition, with a timeout).
They must not import anything from myapp outside this package's stdlib-only modules
(http_call.py, polling.py, http.py, wait_for.py).

Pure builders used by the Kubernetes executor (may import myapp.core): `k8s_resource.py`
(render a resource manifest with `$(params.x)` and Jinja, success/failure conditions) and
`distributed.py` (per-rank pods with rendezvous env). `values.py` gives a template task's
parameter values. No I/O in the builders.
"""
