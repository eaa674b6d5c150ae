"""Run one OP's task code in a subprocess, as a task would, without a server (for trying and testing OPs).

The same code the pipeline holds runs as `python -c CODE` in a fresh working directory: inputs as
environment variables (artifacts as paths), outputs read back from `outputs/` with the rules the
task's consumers use.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from myapp.sdk.runtime import (
    OUTPUT_ARTIFACTS,
    OUTPUT_PARAMETERS,
    decode_parameter,
    encode_parameter,
    unwrap_artifact,
    write_artifact,
)
from myapp.sdk.workflow import PythonOPTemplate

PASS_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "SYSTEMROOT")


class OPRunError(RuntimeError):
    """The OP's process failed: its exit code and standard error are in the message."""

    def __init__(self, message: str, result: LocalResult) -> None:
        super().__init__(message)
        self.result = result


@dataclass
class LocalResult:
    """What one local run of an OP produced."""

    exit_code: int
    stdout: str
    stderr: str
    workdir: Path
    outputs: dict[str, Any] = field(default_factory=dict)


def run_op(
    op: Any,
    inputs: Mapping[str, Any] | None = None,
    *,
    workdir: Path | None = None,
    python: str = sys.executable,
    timeout: float | None = None,
) -> LocalResult:
    """Run `op` (an OP or a PythonOPTemplate) with `inputs` in a subprocess; return its decoded outputs.

    Raises OPRunError when the process fails (a type error of an input or output included).
    """
    template = op if isinstance(op, PythonOPTemplate) else PythonOPTemplate(op)
    workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix=f"myapp-op-{template.name}-"))
    workdir.mkdir(parents=True, exist_ok=True)
    env = {k: os.environ[k] for k in PASS_THROUGH if k in os.environ}
    env.update(template.env)
    for name, value in (inputs or {}).items():
        spec = template.signature.input(name)
        if spec is None:
            raise TypeError(f"OP {template.name}: no input {name!r}")
        if spec.kind == "artifact" and spec.type == "paths" and isinstance(value, (list, tuple)):
            holder = workdir / "inputs" / name
            write_artifact(list(value), "paths", holder)
            env[name] = str(holder)
        elif spec.kind == "artifact":
            env[name] = os.fspath(value)
        else:
            env[name] = encode_parameter(value, spec.type)
    proc = subprocess.run(
        [python, "-c", template.code],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    result = LocalResult(proc.returncode, proc.stdout, proc.stderr, workdir)
    if proc.returncode != 0:
        raise OPRunError(f"OP {template.name} exited with {proc.returncode}: {proc.stderr.strip()[-2000:]}", result)
    for spec in template.signature.outputs:
        if spec.kind == "artifact":
            location = workdir / OUTPUT_ARTIFACTS / spec.name
            result.outputs[spec.name] = unwrap_artifact(str(location), spec.type) if location.exists() else None
        else:
            text = (workdir / OUTPUT_PARAMETERS / spec.name).read_text(encoding="utf-8")
            result.outputs[spec.name] = decode_parameter(text, spec.type)
    return result
