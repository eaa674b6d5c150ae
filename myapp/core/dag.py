"""The task graph of a pipeline: edges, cycle detection, ancestors, descendants, topological order.

An edge u -> v exists when v depends on u (`depends_on`) or binds an input to u's output.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property

from myapp.core.model import PipelineSpec


def with_implied_edges(spec: PipelineSpec) -> PipelineSpec:
    """Return `spec` with every upstream written in `depends_on` (docs/rules.md P2).

    A `from: task.output` binding implies the edge task -> consumer; the result lists the explicit
    `depends_on` first, then the implied upstreams in binding order, without duplicates -- the whole
    graph is readable from `depends_on` alone, and normalising twice changes nothing.
    """
    dag = Dag.from_spec(spec)
    tasks = tuple(
        t if dag.upstream[t.name] == t.depends_on else dataclasses.replace(t, depends_on=dag.upstream[t.name])
        for t in spec.tasks
    )
    return dataclasses.replace(spec, tasks=tasks)


@dataclass(frozen=True)
class Dag:
    """Immutable adjacency of a pipeline's tasks, in declaration order."""

    names: tuple[str, ...]
    upstream: Mapping[str, tuple[str, ...]]

    @classmethod
    def from_spec(cls, spec: PipelineSpec) -> Dag:
        """Build the graph from `depends_on` and task-output bindings."""
        upstream: dict[str, tuple[str, ...]] = {}
        for task in spec.tasks:
            ups = list(task.depends_on)
            ups += [b.task for b in task.inputs if b.source == "task" and b.task]
            upstream[task.name] = tuple(dict.fromkeys(ups))
        return cls(tuple(t.name for t in spec.tasks), upstream)

    @classmethod
    def from_edges(cls, names: Iterable[str], edges: Iterable[tuple[str, str]]) -> Dag:
        """Build the graph from (upstream, downstream) pairs."""
        ordered = tuple(names)
        upstream: dict[str, list[str]] = {n: [] for n in ordered}
        for up, down in edges:
            upstream[down].append(up)
        return cls(ordered, {k: tuple(dict.fromkeys(v)) for k, v in upstream.items()})

    @cached_property
    def downstream(self) -> Mapping[str, tuple[str, ...]]:
        """Return the direct successors of every task."""
        down: dict[str, list[str]] = {n: [] for n in self.names}
        for name in self.names:
            for up in self.upstream.get(name, ()):
                if up in down:
                    down[up].append(name)
        return {k: tuple(v) for k, v in down.items()}

    @cached_property
    def counted_by(self) -> Mapping[str, str]:
        """Return, for every task, the task whose count of waiting upstream tasks it shares.

        Tasks with the same set of direct upstream tasks (at least one) share one count, kept by
        the first of them in declaration order: an upstream's end takes one off each distinct
        set it feeds, not off each task (a 100-wide layer under a 100-wide layer: 1, not 100).
        A task without upstream tasks counts for itself.
        """
        first: dict[frozenset[str], str] = {}
        counter: dict[str, str] = {}
        for name in self.names:
            ups = frozenset(self.upstream.get(name, ()))
            counter[name] = first.setdefault(ups, name) if ups else name
        return counter

    @cached_property
    def sharing(self) -> Mapping[str, tuple[str, ...]]:
        """Return, for each counting task (`counted_by`'s values), the tasks that share its count, itself first."""
        members: dict[str, list[str]] = {}
        for name in self.names:
            members.setdefault(self.counted_by[name], []).append(name)
        return {k: tuple(v) for k, v in members.items()}

    def find_cycle(self) -> list[str] | None:
        """Return one cycle as a list of names (first == last), or None if acyclic."""
        color: dict[str, int] = {n: 0 for n in self.names}
        stack: list[str] = []
        for root in self.names:
            found = self._visit(root, color, stack)
            if found:
                return found
        return None

    def _visit(self, root: str, color: dict[str, int], stack: list[str]) -> list[str] | None:
        # Iterative DFS so a 10,000-node chain cannot overflow the Python stack.
        if color[root]:
            return None
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                color[node] = 1
                stack.append(node)
            succ = self.downstream[node]
            if i < len(succ):
                work.append((node, i + 1))
                nxt = succ[i]
                if color[nxt] == 1:
                    return stack[stack.index(nxt) :] + [nxt]
                if color[nxt] == 0:
                    work.append((nxt, 0))
            else:
                color[node] = 2
                stack.pop()
        return None

    def topological_order(self) -> tuple[str, ...]:
        """Return names so that every task comes after its upstreams (stable by declaration)."""
        indegree = {n: len([u for u in self.upstream.get(n, ()) if u in self.upstream]) for n in self.names}
        ready = [n for n in self.names if indegree[n] == 0]
        order: list[str] = []
        while ready:
            node = ready.pop(0)
            order.append(node)
            for nxt in self.downstream[node]:
                indegree[nxt] -= 1
                if indegree[nxt] == 0:
                    ready.append(nxt)
        return tuple(order)

    def ancestors(self, name: str) -> frozenset[str]:
        """Return every task that `name` transitively depends on."""
        return self._closure(name, self.upstream)

    def descendants(self, name: str) -> frozenset[str]:
        """Return every task that transitively depends on `name`."""
        return self._closure(name, self.downstream)

    def _closure(self, name: str, edges: Mapping[str, tuple[str, ...]]) -> frozenset[str]:
        seen: set[str] = set()
        todo = list(edges.get(name, ()))
        while todo:
            node = todo.pop()
            if node not in seen:
                seen.add(node)
                todo.extend(edges.get(node, ()))
        return frozenset(seen)

    def roots(self) -> tuple[str, ...]:
        """Return the tasks with no upstream."""
        return tuple(n for n in self.names if not self.upstream.get(n))

    def leaves(self) -> tuple[str, ...]:
        """Return the tasks with no downstream task (what a run's outcome is read from, R13)."""
        return tuple(n for n in self.names if not self.downstream.get(n))
