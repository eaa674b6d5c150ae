"""OPs the SDK tests use: the dflow hello-world pair (a class OP and a function OP) and a few edge cases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from myapp.sdk import OP, OPIO, Artifact, OPIOSign, Parameter, op


class WriteFile(OP):
    """dflow's hello-world OP: writes a message and a number into two files."""

    @classmethod
    def get_input_sign(cls) -> OPIOSign:
        return OPIOSign({"msg": str, "number": int})

    @classmethod
    def get_output_sign(cls) -> OPIOSign:
        return OPIOSign({"out_art": Artifact(list[Path]), "length": int})

    @OP.exec_sign_check
    def execute(self, op_in: OPIO) -> OPIO:
        Path("msg.txt").write_text(op_in["msg"])
        Path("results.txt").write_text(str(op_in["number"]))
        return OPIO({"out_art": [Path("msg.txt"), Path("results.txt")], "length": len(op_in["msg"])})


@op(outputs={"summary": str, "copy": Artifact(Path), "meta": dict})
def read_files(files: list[Path], length: int, scale: float = 2.0) -> dict[str, Any]:
    texts = [p.read_text() for p in files]
    print(f"read {len(files)} files: {', '.join(p.name for p in files)}")
    Path("copy.txt").write_text("|".join(texts))
    return {
        "summary": f"{texts[0]}/{texts[1]}/{length * scale}",
        "copy": Path("copy.txt"),
        "meta": {"files": [p.name for p in files], "ok": True},
    }


@op(inputs={"items": Parameter(list), "flag": Parameter(bool, default=False)}, outputs={"total": float})
def total(items: list[Any], flag: bool) -> dict[str, float]:
    value = float(sum(items))
    return {"total": -value if flag else value}


@op(outputs={"out": str})
def templated(text: str) -> dict[str, str]:
    # Text the product would render in a python task's code: the OP travels base64-encoded.
    return {"out": f"{{{{ {text} }}}} $(params.code) " + json.dumps({"a": {"b": 1}})}


@op(outputs={"count": int})
def lying(n: int) -> dict[str, str]:
    return {"count": str(n)}


@op(outputs={"tree": Artifact(Path)})
def directory(name: str) -> dict[str, Path]:
    import os

    os.mkdir("elsewhere")
    os.chdir("elsewhere")  # the outputs still land in the task's working directory
    root = Path("tree").resolve()
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "leaf.txt").write_text(name)
    return {"tree": root}


@op(outputs={"tries": int})
def flaky(marker: str) -> dict[str, int]:
    """Fail the first time (leaving `marker`), succeed the next."""
    path = Path(marker)
    if not path.exists():
        path.write_text("failed once")
        raise RuntimeError("first try fails on purpose")
    return {"tries": 2}


@op
def sleepy(seconds: float) -> None:
    import time

    print("sleeping", flush=True)
    time.sleep(seconds)


@op(outputs={"y": float, "art": Artifact(Path)})
def square(x: float, tag: str = "t") -> dict[str, Any]:
    """One slice of a sweep (docs/rules.md R15): its item x; writes its square and a file."""
    Path("out.txt").write_text(f"{tag}-{x * x}")
    print(f"square {x}")
    return {"y": x * x, "art": Path("out.txt")}


@op(outputs={"best": float, "texts": str})
def pick(ys: list, arts: Artifact(list[Path])) -> dict[str, Any]:  # type: ignore[valid-type]
    """The select-best join: the gathered list of the slices' texts and the list of their files."""
    return {"best": max(float(y) for y in ys), "texts": ",".join(p.read_text() for p in arts)}


@op
def split(n: int) -> {"shards": Artifact(list[Path])}:  # type: ignore[valid-type]  # noqa: F821, UP037
    """Write n shard files and return them as a list of paths (an Artifact(List[Path]) output)."""
    paths = []
    for i in reversed(range(n)):  # the list's order, not the names', is the order of the slices
        path = Path(f"shard-{i}.txt")
        path.write_text(f"rows of shard {i}")
        paths.append(path)
    return {"shards": paths}


@op
def count(shard: Path) -> {"size": int}:  # type: ignore[valid-type]  # noqa: F821, UP037
    """One slice: its own shard file."""
    print(f"{shard.name}: {shard.read_text()}")
    return {"size": len(shard.read_text())}


@op
def names(shards: list[Path]) -> {"names": str}:  # type: ignore[valid-type]  # noqa: F821, UP037
    """Not sliced: the whole list."""
    return {"names": ",".join(p.name for p in shards)}
