"""myapp.sdk: pipelines written in Python, in the style of dflow (docs/sdk.md).

OPs (`@op` functions and `OP` classes with typed inputs and outputs: parameters and artifacts),
`PythonOPTemplate` (an OP run by Python in an image), `Step` (a template with its inputs bound),
`Workflow` (steps in sequence, in parallel or as a DAG; `to_yaml`, `from_yaml`, `submit`), and the
run handle `submit` returns (`wait`, status, per-step state, logs, outputs, artifact download).

Importing this package loads no database, web or queue library: `submit` loads them when it
needs them (a local installation), or talks REST to a server.
"""

from __future__ import annotations

from myapp.sdk.local_run import LocalResult, OPRunError, run_op
from myapp.sdk.runtime import OP, OPIO, Artifact, OPIOSign, Parameter, op
from myapp.sdk.script import ScriptOP
from myapp.sdk.server import Server, SubmitError
from myapp.sdk.signature import IOSpec, Signature, SignatureError, signature_of
from myapp.sdk.submit import RunHandle
from myapp.sdk.workflow import OutputRef, ParamRef, PythonOPTemplate, Slices, Step, Workflow

__all__ = [
    "OP",
    "OPIO",
    "Artifact",
    "IOSpec",
    "LocalResult",
    "OPIOSign",
    "OPRunError",
    "OutputRef",
    "ParamRef",
    "Parameter",
    "PythonOPTemplate",
    "RunHandle",
    "ScriptOP",
    "Server",
    "Signature",
    "SignatureError",
    "Slices",
    "Step",
    "SubmitError",
    "Workflow",
    "op",
    "run_op",
    "signature_of",
]
