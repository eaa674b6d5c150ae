"""Slices (docs/rules.md R15) on the local executor, through a real Celery worker: a sweep whose list
comes from an upstream output, each slice its own process with its item as `$name`, and a join
that reads the gathered list; a failing slice retried alone by a run retry."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.engine_helpers import save, start, task_lines, wait_finished

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def test_a_sweep_fans_out_over_an_upstream_list_and_a_join_reads_the_gathered_outputs(engine_services: Any) -> None:
    pid = save(
        engine_services,
        """
        name: sweep-local
        tasks:
          - name: grid
            template: shell
            args: {script: "echo '[0.5, 2, 3]' > grid"}
            outputs: [{name: lrs, path: grid, type: text}]
          - name: train
            image: local
            command: ["sh", "-c", "echo training $0 as $MYAPP_TASK_NAME; printf s-%s $0 > score", "$lr"]
            inputs: {lr: {from: grid.lrs}}
            outputs: [{name: score, path: score, type: text}]
            slices: {inputs: [lr], parallelism: 2}
          - name: best
            image: local
            command: ["sh", "-c", "echo best of $0", "$scores"]
            inputs: {scores: {from: train.score}}
        """,
    )
    run = wait_finished(engine_services, start(engine_services, pid))
    t = run["by_name"]
    assert run["state"] == "succeeded", run
    assert [t[f"train[{i}]"]["state"] for i in range(3)] == ["succeeded"] * 3
    assert task_lines(engine_services, run["id"], "train[1]") == ["training 2 as train[1]"]
    assert task_lines(engine_services, run["id"], "best") == ['best of ["s-0.5", "s-2", "s-3"]']


def test_retry_reruns_only_the_failed_slice(engine_services: Any, tmp_path: Any) -> None:
    flag = tmp_path / "fixed"
    pid = save(
        engine_services,
        f"""
        name: sweep-retry-local
        tasks:
          - name: train
            image: local
            command: ["sh", "-c", "echo run $0 >> {tmp_path}/runs; [ $0 != b ] || [ -e {flag} ]", "$x"]
            inputs: {{x: [a, b, c]}}
            slices: {{inputs: [x]}}
          - {{name: after, image: local, command: ['true'], depends_on: [train]}}
        """,
    )
    run = wait_finished(engine_services, start(engine_services, pid))
    assert run["state"] == "failed" and run["by_name"]["train[1]"]["state"] == "failed", run
    assert run["by_name"]["train"]["state"] == "failed" and run["by_name"]["after"]["state"] == "upstream_failed"
    flag.write_text("")
    engine_services.runs.retry_run(run["id"], engine_services.clock.now())
    run = wait_finished(engine_services, run["id"])
    assert run["state"] == "succeeded", run
    assert sorted((tmp_path / "runs").read_text().split("\n")) == ["", "run a", "run b", "run b", "run c"]
    assert [a["try_number"] for a in run["by_name"]["train[1]"]["attempts"]] == [1, 2]
    assert [len(run["by_name"][f"train[{i}]"]["attempts"]) for i in (0, 2)] == [1, 1]


def test_file_outputs_are_gathered_and_sliced_again(engine_services: Any) -> None:
    pid = save(
        engine_services,
        """
        name: sweep-files-local
        tasks:
          - name: shard
            image: local
            command: ["sh", "-c", "mkdir -p out && echo part-$0 > out/data.txt", "$n"]
            inputs: {n: [a, b, c]}
            outputs: [{name: part, path: out, type: file}]
            slices: {inputs: [n]}
          - name: count
            image: local
            command: ["sh", "-c", "cat $0/data.txt | tr a-z A-Z > up", "$part"]
            inputs: {part: {from: shard.part}}
            outputs: [{name: up, path: up, type: text}]
            slices: {inputs: [part], parallelism: 1}
          - name: join
            image: local
            command: ["python3", "-c", "import json, sys; print([open(p + '/data.txt').read().strip() for p in json.loads(sys.argv[1])], sys.argv[2])", "$parts", "$ups"]
            inputs: {parts: {from: shard.part}, ups: {from: count.up}}
        """,
    )
    run = wait_finished(engine_services, start(engine_services, pid))
    assert run["state"] == "succeeded", run
    assert task_lines(engine_services, run["id"], "count[2]") == []
    assert task_lines(engine_services, run["id"], "join") == [
        "['part-a', 'part-b', 'part-c'] [\"PART-A\", \"PART-B\", \"PART-C\"]"
    ]


def test_a_list_of_files_output_is_sliced_one_slice_per_file(engine_services: Any) -> None:
    pid = save(
        engine_services,
        """
        name: sweep-list-of-files-local
        tasks:
          - name: split
            image: local
            command: ["sh", "-c", "mkdir shards && for s in b a c; do echo rows-$s > shards/$s.csv; done"]
            outputs: [{name: shards, path: shards, type: files}]
          - name: count
            image: local
            command: ["sh", "-c", "echo $MYAPP_TASK_NAME got $(basename $0): $(cat $0); tr a-z A-Z < $0 > up", "$shard"]
            inputs: {shard: {from: split.shards}}
            outputs: [{name: up, path: up, type: text}]
            slices: {inputs: [shard], parallelism: 2}
          - name: join
            image: local
            command: ["python3", "-c", "import json, sys; print([open(p).read().strip() for p in json.loads(sys.argv[1])], sys.argv[2])", "$shards", "$ups"]
            inputs: {shards: {from: split.shards}, ups: {from: count.up}}
        """,
    )
    run = wait_finished(engine_services, start(engine_services, pid))
    by = run["by_name"]
    assert run["state"] == "succeeded", run
    assert by["split"]["outputs"]["shards"]["type"] == "files"
    assert [p.rsplit("/", 1)[1] for p in by["split"]["outputs"]["shards"]["paths"]] == ["a.csv", "b.csv", "c.csv"]
    assert [task_lines(engine_services, run["id"], f"count[{i}]") for i in range(3)] == [
        ["count[0] got a.csv: rows-a"],
        ["count[1] got b.csv: rows-b"],
        ["count[2] got c.csv: rows-c"],
    ]
    assert by["count[1]"]["inputs"]["shard"]["type"] == "file"  # one file each, fetched for that slice alone
    assert task_lines(engine_services, run["id"], "join") == [
        "['rows-a', 'rows-b', 'rows-c'] [\"ROWS-A\", \"ROWS-B\", \"ROWS-C\"]"
    ]


def test_an_empty_list_of_files_ends_the_sliced_task_at_once(engine_services: Any) -> None:
    pid = save(
        engine_services,
        """
        name: sweep-no-files-local
        tasks:
          - {name: split, image: local, command: ["mkdir", "shards"], outputs: [{name: shards, path: shards, type: files}]}
          - {name: count, image: local, command: ["cat", "$shard"], inputs: {shard: {from: split.shards}}, slices: {inputs: [shard]}}
          - {name: join, image: local, command: ["echo", "joined $n"], inputs: {n: {from: split.shards}}, depends_on: [count]}
        """,
    )
    run = wait_finished(engine_services, start(engine_services, pid))
    assert run["state"] == "succeeded", run
    assert "count[0]" not in run["by_name"]
    assert task_lines(engine_services, run["id"], "join") == ["joined []"]


def test_the_slice_files_example_runs(engine_services: Any) -> None:
    from tests.conftest import REPO

    pid = save(engine_services, (REPO / "templates" / "slice-files.yaml").read_text())
    run = wait_finished(engine_services, start(engine_services, pid))
    assert run["state"] == "succeeded", run
    assert [task_lines(engine_services, run["id"], f"count[{i}]") for i in range(4)] == [
        ["east.csv: 4 rows"],
        ["north.csv: 5 rows"],
        ["south.csv: 5 rows"],
        ["west.csv: 4 rows"],
    ]
    said = task_lines(engine_services, run["id"], "report")
    assert said[1] == 'rows per file: ["4", "5", "5", "4"]', said
    assert said[0].startswith("files: [") and said[0].count(".csv") == 4, said


def test_export_and_import_again_changes_nothing(engine_services: Any) -> None:
    from myapp.core.pipeline_spec import parse_pipeline
    from myapp.yaml_io import dump_yaml, load_yaml

    svc = engine_services
    pid = save(
        svc,
        """
        name: sweep-round-trip
        parameters: [{name: lrs, default: '[1, 2]'}]
        tasks:
          - {name: train, image: local, command: ['true'], inputs: {lr: {from: params.lrs}},
             slices: {inputs: [lr], parallelism: 3, continue_on_failed: true}}
        """,
    )
    exported = dump_yaml(svc.pipelines.export(pid))
    assert "slices:" in exported and "continue_on_failed: true" in exported
    again = svc.pipelines.save(parse_pipeline(load_yaml(exported)), svc.clock.now())
    assert (again.pipeline_id, again.version, again.created_version) == (pid, 1, False)
