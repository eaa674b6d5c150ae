"""Templates, steps and workflows in Python, and their pipeline YAML (docs/rules.md P2) both ways.

A `PythonOPTemplate` runs an OP's code in an image: a task of the built-in `python` template whose
`code` is the serialized OP (script.py), with one input per OP input and one output per OP output
(`outputs/parameters/NAME`, text; `outputs/artifacts/NAME`, file). A `Step` binds a template to
literals, workflow parameters and other steps' outputs; a `Workflow` composes steps as a sequence
of (parallel) groups, or as a DAG whose edges are the bindings plus explicit dependencies.
`to_yaml()` writes the document `myapp pipeline import` and the editor read; `from_yaml()` reads
it back (SDK tasks as OPs known by their code, any other task kept as it is).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from myapp.core.errors import SpecError
from myapp.core.model import GlobalParam, InputBinding, OutputSpec, PipelineSpec, Resources, SliceSpec, TaskSpec
from myapp.core.pipeline_spec import parse_pipeline, pipeline_to_dict
from myapp.sdk.runtime import OUTPUT_ARTIFACTS, OUTPUT_PARAMETERS, encode_parameter
from myapp.sdk.script import build_code, op_name, op_signature, parse_code
from myapp.sdk.signature import IOSpec, Signature
from myapp.yaml_io import dump_yaml, load_yaml

PYTHON_TEMPLATE = "python"
DEFAULT_IMAGE = "python:3.12-slim"


class PythonOPTemplate:
    """An OP run by Python in an image (the `python` template; the local executor ignores the image).

    `image=None` runs it in the `python` template's own image.
    """

    def __init__(
        self,
        op: Any,
        image: str | None = DEFAULT_IMAGE,
        *,
        helpers: Sequence[Any] = (),
        env: Mapping[str, str] | None = None,
        resources: Resources | None = None,
    ) -> None:
        self.op = op
        self.image = image
        self.name = op_name(op)
        self.signature: Signature = op_signature(op)
        self.code = build_code(op, helpers)
        self.env = dict(env or {})
        self.resources = resources or Resources()

    def outputs(self) -> tuple[OutputSpec, ...]:
        """Return the task outputs the OP's outputs become."""
        # Artifact(List[Path]) is a `files` output (R11): one artifact per path, a list to slice over (R15).
        return tuple(
            OutputSpec(name=s.name, path=f"{OUTPUT_ARTIFACTS}/{s.name}", type="files" if s.type == "paths" else "file")
            if s.kind == "artifact"
            else OutputSpec(name=s.name, path=f"{OUTPUT_PARAMETERS}/{s.name}", type="text")
            for s in self.signature.outputs
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PythonOPTemplate) and (self.code, self.image) == (other.code, other.image)

    def __hash__(self) -> int:
        return hash((self.code, self.image))


@dataclass(frozen=True)
class ParamRef:
    """A workflow parameter used as an input (`wf.parameters["name"]`)."""

    name: str


@dataclass(frozen=True)
class OutputRef:
    """An output of a step used as an input (`step.outputs.parameters["x"]`, `.artifacts["y"]`)."""

    step: str
    name: str
    spec: IOSpec | None = None


@dataclass(frozen=True)
class Slices:
    """Fan a step out over lists, as dflow's `Slices` (docs/rules.md R15): one task instance per item.

    `input_parameter` / `input_artifact` name the step's inputs whose values are lists (a literal
    list, a workflow parameter, another step's output holding a list); slice i gets item i of
    each. Every output is gathered in slice order: a parameter into the list of the slices' texts,
    an artifact into the list of their paths (`output_parameter` / `output_artifact`, when given,
    must name the OP's outputs). `pool_size`: at most that many slices at once (Step's
    `parallelism` does the same).
    """

    input_parameter: Sequence[str] = ()
    input_artifact: Sequence[str] = ()
    output_parameter: Sequence[str] = ()
    output_artifact: Sequence[str] = ()
    pool_size: int | None = None

    @property
    def inputs(self) -> tuple[str, ...]:
        """Return the sliced inputs, parameters first."""
        return (*self.input_parameter, *self.input_artifact)


class _Outputs:
    def __init__(self, step: Step, kind: str) -> None:
        self.step, self.kind = step, kind

    def __getitem__(self, name: str) -> OutputRef:
        spec = self.step.output_spec(name)
        if spec is not None and spec.kind != self.kind:
            raise KeyError(
                f"step {self.step.name!r}: {name!r} is a{'n' if spec.kind == 'artifact' else ''} "
                f"{spec.kind}, not a{'n' if self.kind == 'artifact' else ''} {self.kind}"
            )
        if spec is None and self.step.template is not None:
            raise KeyError(f"step {self.step.name!r} has no {self.kind} output {name!r}")
        if spec is not None and self.step.slices is not None:  # gathered: a list of texts, or of paths
            spec = replace(spec, type="paths" if spec.kind == "artifact" else "json")
        return OutputRef(self.step.name, name, spec)


class StepOutputs:
    """`step.outputs.parameters[NAME]` and `step.outputs.artifacts[NAME]`, as in dflow."""

    def __init__(self, step: Step) -> None:
        self.parameters = _Outputs(step, "parameter")
        self.artifacts = _Outputs(step, "artifact")


class Step:
    """One task of a workflow: a template with its inputs bound (literals, parameters, outputs)."""

    def __init__(
        self,
        name: str,
        template: PythonOPTemplate | None = None,
        *,
        parameters: Mapping[str, Any] | None = None,
        artifacts: Mapping[str, Any] | None = None,
        dependencies: Iterable[Step | str] = (),
        retries: int = 0,
        timeout: int = 0,
        env: Mapping[str, str] | None = None,
        position: tuple[float, float] | None = None,
        task: TaskSpec | None = None,
        trigger_rule: str = "all_success",
        when: str = "",
        slices: Slices | None = None,
        parallelism: int = 0,
        continue_on_failed: bool = False,
        continue_on_success_ratio: float | None = None,
    ) -> None:
        if (template is None) == (task is None):
            raise TypeError(f"step {name!r}: give a template")
        self.name = name
        self.slices = slices
        # R15, dflow's Step arguments: slices at once, and how many must succeed
        self.parallelism = parallelism or (slices.pool_size if slices and slices.pool_size else 0)
        self.continue_on_failed, self.success_ratio = continue_on_failed, continue_on_success_ratio
        self.template = template
        self.raw_task = task  # a task of a YAML document that myapp.sdk did not write
        self.dependencies = tuple(d.name if isinstance(d, Step) else str(d) for d in dependencies) or (
            task.depends_on if task is not None else ()
        )
        self.retries, self.timeout, self.env = retries, timeout, dict(env or {})
        # docs/rules.md R13, R14: checked with the rest of the pipeline on submit and export
        self.trigger_rule, self.when = trigger_rule, when
        self.position = position  # where the editor shows the node (kept from a document read back)
        self.template_ref = PYTHON_TEMPLATE  # `python`, or the `python@N` a saved pipeline pinned
        self.bindings: dict[str, Any] = {}
        for given in (parameters or {}, artifacts or {}):
            for key, value in given.items():
                self.bindings[key] = value
        if template is not None:
            self._check_slices(template.signature)
            self._check_bindings(template.signature, dict(parameters or {}), dict(artifacts or {}))
        self.outputs = StepOutputs(self)

    def _check_slices(self, signature: Signature) -> None:
        if self.slices is None:
            return
        where = f"step {self.name!r}: slices"
        for name in self.slices.inputs:
            if name not in self.bindings:
                raise TypeError(f"{where}: input {name!r} has no value: bind it to a list")
        for name in (*self.slices.output_parameter, *self.slices.output_artifact):
            if signature.output(name) is None:
                raise TypeError(f"{where}: the OP has no output {name!r}")

    def output_spec(self, name: str) -> IOSpec | None:
        """Return the declared output `name` of this step's OP (None for a task not written by myapp.sdk)."""
        return self.template.signature.output(name) if self.template is not None else None

    def _check_bindings(self, signature: Signature, parameters: dict[str, Any], artifacts: dict[str, Any]) -> None:
        where = f"step {self.name!r}"
        for key in [*parameters, *artifacts]:
            if signature.input(key) is None:
                raise TypeError(
                    f"{where}: the OP {self.template.name if self.template else ''} has no input {key!r}; "
                    f"it takes {', '.join(s.name for s in signature.inputs) or 'none'}"
                )
        for spec in signature.inputs:
            given = spec.name in parameters or spec.name in artifacts
            if not given and not spec.has_default and not spec.optional:
                raise TypeError(f"{where}: input {spec.name!r} ({spec.kind} {spec.type}) has no value")
            if spec.kind == "parameter" and spec.name in artifacts:
                raise TypeError(f"{where}: {spec.name!r} is a parameter: pass it in parameters=")
            if spec.kind == "artifact" and spec.name in parameters:
                raise TypeError(f"{where}: {spec.name!r} is an artifact: pass it in artifacts=")
            if given and self.slices is not None and spec.name in self.slices.inputs:
                _check_items(where, spec, self.bindings[spec.name])
            elif given:
                _check_value(where, spec, self.bindings[spec.name])

    def task(self, depends_on: Sequence[str] = ()) -> TaskSpec:
        """Return the pipeline task of this step, after `depends_on` (added to its own dependencies).

        The producers of bound outputs are written into `depends_on` too: the product implies those
        edges anyway, and written out the editor draws them.
        """
        producers = [v.step for v in self.bindings.values() if isinstance(v, OutputRef)]
        deps = tuple(dict.fromkeys([*self.dependencies, *producers, *depends_on]))
        if self.raw_task is not None:
            return replace(self.raw_task, depends_on=deps)
        assert self.template is not None
        template = self.template
        inputs = []
        for spec in template.signature.inputs:
            if spec.name in self.bindings:
                sliced = self.slices is not None and spec.name in self.slices.inputs
                inputs.append(_binding(spec, self.bindings[spec.name], sliced))
            elif spec.has_default:  # written out, so the form in the editor shows it
                inputs.append(InputBinding(spec.name, "literal", value=encode_parameter(spec.default, spec.type)))
        return TaskSpec(
            name=self.name,
            template=self.template_ref,
            image=template.image,
            args={"code": template.code},
            inputs=tuple(inputs),
            outputs=template.outputs(),
            depends_on=deps,
            retries=self.retries,
            timeout=self.timeout,
            resources=template.resources,
            env={**template.env, **self.env},
            position=self.position,
            trigger_rule=self.trigger_rule,
            when=self.when,
            slices=self._slice_spec(),
        )

    def _slice_spec(self) -> SliceSpec | None:
        if self.slices is None:
            return None
        return SliceSpec(
            inputs=self.slices.inputs,
            parallelism=self.parallelism,
            continue_on_failed=self.continue_on_failed,
            success_ratio=self.success_ratio,
        )

    @classmethod
    def from_task(cls, task: TaskSpec) -> Step:
        """Return the step of a pipeline task: an OP when myapp.sdk wrote it, else the task as it is."""
        is_python = (task.template or "").split("@")[0] == PYTHON_TEMPLATE
        script = parse_code(str(task.args.get("code", ""))) if is_python else None
        if script is not None:
            step = cls.__new__(cls)
            step.name, step.raw_task = task.name, None
            step.template = PythonOPTemplate(script, image=task.image, resources=task.resources)
            step.dependencies, step.retries, step.timeout = task.depends_on, task.retries, task.timeout
            step.env, step.bindings = dict(task.env), {b.name: _ref_of(b) for b in task.inputs}
            step.trigger_rule, step.when = task.trigger_rule, task.when
            step.slices, step.parallelism, step.continue_on_failed, step.success_ratio = _slices_of(task)
            step.position = task.position  # moved in the editor: still the same OP
            step.template_ref = task.template or PYTHON_TEMPLATE
            step.outputs = StepOutputs(step)
            if step.task() in (task, _before_files(task)):  # anything edited beyond what myapp.sdk writes: a plain task
                return step
        return cls(task.name, task=task)


def _before_files(task: TaskSpec) -> TaskSpec:
    """Return `task` as myapp.sdk wrote it before Artifact(List[Path]) became a `files` output (a
    `file` output holding the directory): such a document still reads back as its OP, and is written
    with `files` when submitted again."""
    code = parse_code(str(task.args.get("code", "")))
    lists = {s.name for s in op_signature(code).outputs if s.type == "paths"} if code is not None else set()
    outputs = tuple(replace(o, type="files") if o.name in lists and o.type == "file" else o for o in task.outputs)
    return replace(task, outputs=outputs)


def _check_value(where: str, spec: IOSpec, value: Any) -> None:
    if isinstance(value, ParamRef):
        return  # text at run time: the task checks it against the type
    if isinstance(value, OutputRef):
        produced = value.spec
        if produced is None:
            return  # an output of a task myapp.sdk did not write: checked at run time
        if produced.kind != spec.kind:
            raise TypeError(
                f"{where}: input {spec.name!r} is a{'n' if spec.kind == 'artifact' else ''} {spec.kind}, "
                f"but {value.step}.{value.name} is a{'n' if produced.kind == 'artifact' else ''} "
                f"{produced.kind}"
            )
        compatible = (
            produced.type == spec.type
            or spec.type == "str"
            or (produced.type, spec.type) in {("int", "float"), ("path", "paths")}
            or "json" in (spec.type,)
        )
        if not compatible:
            raise TypeError(
                f"{where}: input {spec.name!r} expects {spec.type}, but {value.step}.{value.name} is {produced.type}"
            )
        return
    if isinstance(value, _Literal):
        return
    if spec.kind == "artifact":
        if not isinstance(value, (str, bytes)) and not hasattr(value, "__fspath__"):
            raise TypeError(
                f"{where}: artifact {spec.name!r} takes another step's artifact or a path on the "
                f"worker, not {type(value).__name__}"
            )
        return
    try:
        encode_parameter(value, spec.type)
    except TypeError as exc:
        raise TypeError(f"{where}: input {spec.name!r}: {exc}") from None


def _check_items(where: str, spec: IOSpec, value: Any) -> None:
    """A sliced input: a list literal whose every item is a value of the input's type, or a reference."""
    if isinstance(value, OutputRef) and value.spec is not None and value.spec.type == "path":
        raise TypeError(
            f"{where}: input {spec.name!r} is sliced, but {value.step}.{value.name} is one path, not a list: "
            "declare that output Artifact(List[Path])"
        )
    if isinstance(value, (ParamRef, OutputRef, _Literal)):
        return  # a list at run time: the sliced task fails saying so when it is not one (R15)
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{where}: input {spec.name!r} is sliced: give a list, not {type(value).__name__}")
    for item in value:
        _check_value(where, spec, item)


def _slices_of(task: TaskSpec) -> tuple[Slices | None, int, bool, float | None]:
    """Return the SDK form of a task's slices block: (Slices, parallelism, continue_on_failed, ratio)."""
    if task.slices is None:
        return None, 0, False, None
    kinds = {b.name: b for b in task.inputs}
    code = parse_code(str(task.args.get("code", "")))
    signature = op_signature(code) if code is not None else None
    artifacts = {s.name for s in signature.inputs if s.kind == "artifact"} if signature else set()
    names = [n for n in task.slices.inputs if n in kinds]
    sl = Slices(
        input_parameter=tuple(n for n in names if n not in artifacts),
        input_artifact=tuple(n for n in names if n in artifacts),
    )
    return sl, task.slices.parallelism, task.slices.continue_on_failed, task.slices.success_ratio


@dataclass(frozen=True)
class _Literal:
    """A literal read from YAML: its text, as written."""

    text: str


def _binding(spec: IOSpec, value: Any, sliced: bool = False) -> InputBinding:
    if sliced and isinstance(value, (list, tuple)):  # R15: the list, each item as the input's text
        if spec.kind == "artifact":
            return InputBinding(spec.name, "literal", value=json.dumps([str(v) for v in value]))
        return InputBinding(spec.name, "literal", value=json.dumps([_item(v, spec.type) for v in value]))
    if isinstance(value, ParamRef):
        return InputBinding(spec.name, "param", param=value.name)
    if isinstance(value, OutputRef):
        return InputBinding(spec.name, "task", task=value.step, output=value.name)
    if isinstance(value, _Literal):
        return InputBinding(spec.name, "literal", value=value.text)
    if spec.kind == "artifact":
        return InputBinding(spec.name, "literal", value=str(value))
    return InputBinding(spec.name, "literal", value=encode_parameter(value, spec.type))


def _item(value: Any, type_name: str) -> Any:
    """Return a slice item as written in the list: strings and numbers as themselves (their text is
    the slice's input), anything else as its encoded text."""
    if type_name in ("str", "int", "float") and not isinstance(value, bool):
        return value
    return encode_parameter(value, type_name)


def _ref_of(binding: InputBinding) -> Any:
    if binding.source == "param":
        return ParamRef(binding.param or "")
    if binding.source == "task":
        return OutputRef(binding.task or "", binding.output or "")
    return _Literal(binding.value or "")


class Workflow:
    """Steps composed into one pipeline: `add(step)` runs it after everything added before, `add([a, b])`
    runs a and b side by side; with `dag=True`, order comes only from bindings and `dependencies`."""

    def __init__(
        self,
        name: str,
        *,
        project: str = "default",
        description: str = "",
        parameters: Mapping[str, Any] | None = None,
        dag: bool = False,
        timeout: int = 0,
    ) -> None:
        self.name, self.project, self.description, self.dag, self.timeout = name, project, description, dag, timeout
        self.global_params = {
            k: GlobalParam(
                k,
                default=None if v is None else v if isinstance(v, str) else encode_parameter(v, _json_type(v)),
                required=v is None,
            )
            for k, v in (parameters or {}).items()
        }
        self.parameters = {name: ParamRef(name) for name in self.global_params}
        self.groups: list[list[Step]] = []
        self.base: PipelineSpec | None = None  # what a document read by from_yaml had beyond steps

    def add(self, step: Step | Sequence[Step]) -> Workflow:
        """Add a step, or a list of steps run in parallel; return the workflow."""
        group = [step] if isinstance(step, Step) else list(step)
        known = {s.name for s in self.steps}
        for s in group:
            if s.name in known:
                raise ValueError(f"workflow {self.name!r} already has a step {s.name!r}")
            known.add(s.name)
        self.groups.append(group)
        return self

    @property
    def steps(self) -> list[Step]:
        """Return every step in the order added."""
        return [s for group in self.groups for s in group]

    def step(self, name: str) -> Step:
        """Return the step `name`; KeyError if absent."""
        found = next((s for s in self.steps if s.name == name), None)
        if found is None:
            raise KeyError(f"workflow {self.name!r} has no step {name!r}")
        return found

    def to_spec(self) -> PipelineSpec:
        """Return the pipeline this workflow is."""
        tasks: list[TaskSpec] = []
        previous: list[str] = []
        for group in self.groups:
            after = [] if self.dag else previous
            tasks.extend(s.task(after) for s in group)
            previous = [s.name for s in group]
        return replace(
            self.base or PipelineSpec(name=self.name),
            name=self.name,
            project=self.project,
            description=self.description,
            parameters=tuple(self.global_params.values()),
            timeout=self.timeout,
            tasks=tuple(tasks),
        )

    def to_dict(self) -> dict[str, object]:
        """Return the canonical pipeline document as plain data."""
        return pipeline_to_dict(self.to_spec())

    def to_yaml(self) -> str:
        """Return the pipeline YAML `myapp pipeline import` and the editor read."""
        return dump_yaml(self.to_dict())

    @classmethod
    def from_spec(cls, spec: PipelineSpec) -> Workflow:
        """Return the workflow of a pipeline (a DAG: its order is in the tasks' bindings and depends_on)."""
        wf = cls(spec.name, project=spec.project, description=spec.description, dag=True, timeout=spec.timeout)
        wf.global_params = {p.name: p for p in spec.parameters}
        wf.parameters = {name: ParamRef(name) for name in wf.global_params}
        wf.base = spec  # schedule, alerts, global outputs: kept as they were
        for task in spec.tasks:
            wf.add(Step.from_task(task))
        return wf

    @classmethod
    def from_yaml(cls, text: str) -> Workflow:
        """Read a pipeline YAML document (as written by `to_yaml` or `myapp pipeline export`)."""
        data = load_yaml(text)
        if not isinstance(data, dict):
            raise SpecError("", "a pipeline document is a mapping")
        return cls.from_spec(parse_pipeline(data))

    def submit(
        self,
        parameters: Mapping[str, Any] | None = None,
        *,
        server: Any = None,
        local: bool | None = None,
        services: Any = None,
    ) -> Any:
        """Save this workflow as a pipeline and start a run; return its RunHandle (myapp/sdk/submit.py).

        To `server` (a myapp.sdk.Server) or the server of MYAPP_URL when set; else to the local
        installation (`local=True` forces it; `services` gives one explicitly).
        """
        from myapp.sdk.submit import submit

        return submit(self, parameters, server=server, local=local, services=services)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Workflow) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(self.to_yaml())

    def __repr__(self) -> str:
        return f"<Workflow {self.name} steps={[s.name for s in self.steps]}>"


def _json_type(value: Any) -> str:
    return {str: "str", bool: "bool", int: "int", float: "float"}.get(type(value), "json")
