"""The container entrypoint that hands outputs over, and the termination message it writes. Pure.

Every task container runs its argv under a small POSIX `sh` wrapper: it changes to the attempt's
working directory (in the shared workflow space), runs the argv as its child and forwards SIGTERM
(and SIGINT, SIGHUP) to it, and, when that succeeded, copies
each declared output given by an absolute path into `WORKDIR/.myapp/outputs/NAME` (relative paths
already live in the workflow space) and writes the text outputs to the termination message:

    myapp-outputs 1
    NAME BYTES
    <BYTES bytes of content>

Text outputs thus reach the worker even without a shared volume (an emptyDir workflow space);
file outputs need the shared one, or pods that upload them (myapp/k8s/transfer.py: the wrapper then
writes the task's exit code to MYAPP_EXIT_CODE_FILE last, which the uploader waits for). Images need /bin/sh (any Debian, Alpine or busybox base has it).

The wrapper is the container's PID 1, and the kubelet signals only PID 1: a PID 1 has no default
signal action, so a plain `sh -c` wrapper would ignore the SIGTERM of a deletion and the task
would only die by SIGKILL when the grace period ends. The wrapper therefore traps the signal and
passes it on, then waits for the task's own exit status (`wait` returns early when a trap runs).
"""

from __future__ import annotations

from collections.abc import Sequence

from myapp.core.model import OutputSpec

HEADER = "myapp-outputs 1\n"
KEEP_DIR = ".myapp/outputs"
TERMINATION_LOG = "/dev/termination-log"

SCRIPT = r"""mkdir -p "$MYAPP_WORKDIR" && cd "$MYAPP_WORKDIR" || exit 125
"$@" &
child=$!
for sig in TERM INT HUP; do trap "kill -$sig $child 2>/dev/null" "$sig"; done
wait "$child"
rc=$?
while kill -0 "$child" 2>/dev/null; do wait "$child"; rc=$?; done
if [ "$rc" -eq 0 ] && [ -n "${MYAPP_OUTPUTS:-}" ]; then
  keep="$MYAPP_WORKDIR/.myapp/outputs"
  tlog="${MYAPP_TERMINATION_LOG:-/dev/termination-log}"
  mkdir -p "$keep"
  printf 'myapp-outputs 1\n' 2>/dev/null > "$tlog" || tlog=/dev/null
  printf '%s\n' "$MYAPP_OUTPUTS" | while IFS=: read -r kind name path; do
    [ -n "$name" ] || continue
    case "$path" in /*) src="$path" ;; *) src="$MYAPP_WORKDIR/$path" ;; esac
    [ -e "$src" ] || continue
    case "$path" in /*) rm -rf "${keep:?}/$name"; mkdir -p "$keep/$name"; cp -pR "$src" "$keep/$name/" ;; esac
    if [ "$kind" = text ] && [ -f "$src" ]; then
      size=$(wc -c < "$src" | tr -d ' ')
      { printf '%s %s\n' "$name" "$size"; cat "$src"; printf '\n'; } >> "$tlog"
    fi
  done
fi
[ -z "${MYAPP_EXIT_CODE_FILE:-}" ] || echo "$rc" > "$MYAPP_EXIT_CODE_FILE"
exit "$rc"
"""


def wrapped_command(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Return (command, args) of a container that runs `argv` under the entrypoint."""
    return ["/bin/sh", "-c", SCRIPT, "myapp-entry"], list(argv)


def outputs_env(outputs: Sequence[OutputSpec]) -> str:
    """Return MYAPP_OUTPUTS: one `type:name:path` line per declared output."""
    for out in outputs:
        if "\n" in out.path or "\0" in out.path:
            raise ValueError(f"output {out.name!r}: the path contains a line break")
    return "\n".join(f"{out.type}:{out.name}:{out.path}" for out in outputs)


def parse_termination_outputs(message: str) -> dict[str, str]:
    """Return the text outputs in a termination message; a truncated or foreign one gives what is whole."""
    if not message.startswith(HEADER):
        return {}
    data = message.encode("utf-8")
    pos, found = len(HEADER), {}
    while pos < len(data):
        eol = data.find(b"\n", pos)
        name, _, size = data[pos:eol].decode("utf-8", "replace").partition(" ") if eol >= 0 else ("", "", "")
        if not name or not size.isdigit():
            break
        start, end = eol + 1, eol + 1 + int(size)
        if end >= len(data) or data[end : end + 1] != b"\n":
            break  # cut by the 4096-byte limit: the workflow space still has it
        found[name] = data[start:end].decode("utf-8", "replace")
        pos = end + 1
    return found
