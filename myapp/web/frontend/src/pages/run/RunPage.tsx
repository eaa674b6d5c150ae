// The run page: the DAG with live colours, run actions, and per-task tabs (inputs/outputs, details,
// logs live, container, Kubernetes events). Polls GET /runs/<id> every second until the run ends.
import { useEffect, useMemo, useState } from "react";
import { Background, Controls, Edge, Node, ReactFlow, ReactFlowProvider, useReactFlow } from "@xyflow/react";
import yaml from "js-yaml";
import { api, can, get, post } from "../../api";
import { t } from "../../i18n";
import { RunNode, RunNodeData, sliceCounts, sliceOf } from "../../graph";
import { ErrorBox, RUN_TERMINAL, StateBadge, errorText, fmtDuration, fmtTime, stateColor, toast, usePolling } from "../../ui";
import { layout, makeEdge } from "../editor/model";
import { CopyDialog, RunButtons, RunRow } from "./RunActions";
import { TaskPanel, TaskRow } from "./TaskPanel";
import { Gantt } from "./Gantt";

const nodeTypes = { runTask: RunNode };

export interface RunDetail extends RunRow { tasks: TaskRow[] }

export function RunPage({ run_id }: { run_id: number }) {
  return (
    <ReactFlowProvider>
      <RunView runId={run_id} />
    </ReactFlowProvider>
  );
}

function buildGraph(def: any, run: RunDetail): { nodes: Node<RunNodeData>[]; edges: Edge[] } {
  const names = new Set(run.tasks.map((x) => x.name));
  const tasks: any[] = (def?.tasks ?? []).filter((x: any) => names.has(x.name));
  const known = new Set(tasks.map((x) => x.name));
  // A slice (`train[3]`, rules R15) is shown inside its sliced task's node, not as a node of its own.
  const grouped = (name: string) => { const of = sliceOf(name); return of !== null && names.has(of[0]); };
  for (const ti of run.tasks) if (!known.has(ti.name) && !grouped(ti.name)) tasks.push({ name: ti.name });
  const nodes: Node<RunNodeData>[] = tasks.map((task) => ({
    id: task.name, type: "runTask", draggable: false, connectable: false,
    position: Array.isArray(task.position) ? { x: task.position[0], y: task.position[1] } : { x: 0, y: 0 },
    data: { name: task.name, state: "pending", try_number: 0 },
  }));
  const edges: Edge[] = [];
  for (const task of tasks) {
    // Every upstream: depends_on (where the server also lists binding-implied ones, rules P2) and,
    // for definitions saved before that, the `from: task.output` bindings themselves.
    const bound = Object.values(task.inputs ?? {}).map((raw: any) =>
      typeof raw?.from === "string" && !raw.from.startsWith("params.") ? raw.from.split(".")[0] : "");
    for (const dep of new Set<string>([...(task.depends_on ?? []), ...bound])) {
      if (dep && dep !== task.name && names.has(dep)) edges.push({ ...makeEdge(dep, task.name), animated: false });
    }
  }
  const positioned = tasks.every((x) => Array.isArray(x.position));
  return { nodes: positioned ? nodes : layout(nodes, edges), edges };
}

/** The slices of the selected sliced task (or of the selected slice's task): pick one to see its tabs. */
function SlicePicker({ tasks, selected, onPick }: { tasks: TaskRow[]; selected: string; onPick: (name: string) => void }) {
  const owner = sliceOf(selected)?.[0] ?? selected;
  const slices = tasks.filter((x) => sliceOf(x.name)?.[0] === owner)
    .sort((a, b) => (sliceOf(a.name)?.[1] ?? 0) - (sliceOf(b.name)?.[1] ?? 0));
  if (!slices.length) return null;
  return (
    <div className="myapp-slices" data-testid="slice-picker">
      <div className="myapp-slices-head">
        <b>{t("slices")}</b>{" "}
        <a href="#" className={owner === selected ? "active" : ""} onClick={(e) => { e.preventDefault(); onPick(owner); }}>{owner}</a>
      </div>
      <div className="myapp-slices-list">
        {slices.map((x) => (
          <button type="button" key={x.name} data-slice={x.name} data-state={x.state} title={`${x.name}: ${x.state}`}
                  className={"myapp-slice" + (x.name === selected ? " selected" : "")} style={{ background: stateColor(x.state) }}
                  onClick={() => onPick(x.name)}>
            {sliceOf(x.name)?.[1]}{x.try_number > 1 ? ` (${x.try_number})` : ""}
          </button>
        ))}
      </div>
    </div>
  );
}

/** Order tasks as the graph lays them out (top to bottom, then left to right). */
function orderTasks(tasks: TaskRow[], graph: { nodes: Node<RunNodeData>[] } | null): TaskRow[] {
  if (!graph) return tasks;
  const at = new Map(graph.nodes.map((n) => [n.id, n.position]));
  return [...tasks].sort((a, b) => {
    const pa = at.get(a.name), pb = at.get(b.name);
    return pa && pb ? pa.y - pb.y || pa.x - pb.x : 0;
  });
}

function RunView({ runId }: { runId: number }) {
  const flow = useReactFlow();
  const [run, setRun] = useState<RunDetail | null>(null);
  const [graph, setGraph] = useState<{ nodes: Node<RunNodeData>[]; edges: Edge[] } | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [copying, setCopying] = useState(false);
  const [poll, setPoll] = useState(0);
  const [view, setView] = useState<"graph" | "gantt">("graph");
  const finished = run !== null && RUN_TERMINAL.has(run.state);
  const canWrite = can("Runs", "write");

  const refresh = async () => {
    try {
      const res = await get<{ result: RunDetail }>(`/runs/${runId}`);
      setRun(res.result);
      setError(null);
    } catch (err) {
      setError(err);
    }
  };
  usePolling(refresh, 1000, !finished, [poll]);

  useEffect(() => {
    // A large run has no task instances while a worker writes them (state creating): the graph is
    // built once they exist.
    if (!run || graph || run.state === "creating") return;
    (async () => {
      let def: any = null;
      try {
        const text = await api<string>("GET", `/pipelines/${run.pipeline_id}/export`, { raw: true, query: { version: run.version } });
        def = yaml.load(text);
      } catch { def = null; }
      setGraph(buildGraph(def, run));
      if (!selected && run.debug_task) setSelected(run.debug_task);
      setTimeout(() => flow.fitView({ padding: 0.25, maxZoom: 1.2 }), 60);
    })();
  }, [run, graph]);

  const nodes = useMemo(() => {
    if (!graph || !run) return [];
    const byName = new Map(run.tasks.map((x) => [x.name, x]));
    const counts = sliceCounts(run.tasks);
    const owner = selected ? sliceOf(selected)?.[0] : undefined;
    return graph.nodes.map((n) => {
      const ti = byName.get(n.id);
      return { ...n, selected: n.id === selected || n.id === owner,
               data: { ...n.data, state: ti?.state ?? "pending", try_number: ti?.try_number ?? 0, slices: counts.get(n.id) } };
    });
  }, [graph, run, selected]);
  const edges = useMemo(() => {
    if (!graph || !run) return [];
    const running = new Set(run.tasks.filter((x) => x.state === "running").map((x) => x.name));
    return graph.edges.map((e) => ({ ...e, animated: running.has(e.target) }));
  }, [graph, run]);

  if (error && !run) return <ErrorBox error={error} />;
  if (!run) return <div className="myapp-loading">{t("loading")}</div>;
  const task = run.tasks.find((x) => x.name === selected) ?? null;
  const after = () => { setPoll((x) => x + 1); refresh(); };

  // Retry one failed slice (rules R15): in a finished run, when the slice and its sliced task both did not succeed.
  const retryable = new Set(["failed", "upstream_failed", "stopped"]);
  const sliceOwner = task ? sliceOf(task.name)?.[0] : undefined;
  const ownerRow = sliceOwner ? run.tasks.find((x) => x.name === sliceOwner) : undefined;
  const canRetrySlice = canWrite && finished && task !== null && ownerRow !== undefined
    && retryable.has(task.state) && retryable.has(ownerRow.state);
  const retrySlice = async (name: string) => {
    try {
      await post(`/runs/${run.id}/slices/${encodeURIComponent(name)}/retry`);
      toast(t("retry_slice_sent", { name }), "success");
    } catch (err) {
      toast(errorText(err), "danger");
    }
    after();
  };

  const mark = async (state: string) => {
    try {
      await post(`/runs/${run.id}/mark`, { state });
      toast(t("marked", { state }), "success");
    } catch (err) {
      toast(errorText(err), "danger");
    }
    after();
  };

  return (
    <div className="myapp-run" data-testid="run-page" data-run-id={run.id} data-state={run.state}>
      <div className="myapp-page-header">
        <h2>
          {t("run")} #{run.id} <small><a href={`/pipelines/${run.pipeline_id}/edit`}>{run.pipeline}</a> · {t("version_n", { n: run.version ?? "?" })}</small>
          {" "}<span data-testid="run-state"><StateBadge state={run.state} /></span>
        </h2>
        <div className="myapp-page-actions">
          <RunButtons run={run} canWrite={canWrite} onChanged={after} onCopy={() => setCopying(true)} size="sm" />
          {canWrite && finished && (
            <span className="dropdown">
              <select className="form-control input-sm myapp-inline" value="" data-testid="mark"
                      onChange={(e) => e.target.value && mark(e.target.value)}>
                <option value="">{t("mark_as")}</option>
                <option value="succeeded">{t("state_succeeded")}</option>
                <option value="failed">{t("state_failed")}</option>
              </select>
            </span>
          )}
          <a className="btn btn-default btn-sm" href={`/runs/?pipeline_id=${run.pipeline_id}`}>{t("all_runs")}</a>
        </div>
      </div>
      <div className="myapp-run-meta">
        <span><b>{t("trigger")}:</b> {t(`trigger_${run.trigger}` as any)}{run.debug_task ? ` (${run.debug_task})` : ""}</span>
        <span><b>{t("execution_date")}:</b> {fmtTime(run.execution_instant ?? run.execution_date)}</span>
        <span><b>{t("runner")}:</b> {run.runner}</span>
        <span><b>{t("started")}:</b> {fmtTime(run.started_at)}</span>
        <span><b>{t("duration")}:</b> {fmtDuration(run.started_at, run.ended_at)}</span>
        {run.copied_from && <span><b>{t("copied_from")}:</b> <a href={`/runs/${run.copied_from}`}>#{run.copied_from}</a></span>}
        {Object.keys(run.params).length > 0 && (
          <span><b>{t("parameters")}:</b> {Object.entries(run.params).map(([k, v]) => `${k}=${v}`).join(", ")}</span>
        )}
        {run.message && run.state !== "creating" && <span className="text-danger"><b>{t("message")}:</b> {run.message}</span>}
      </div>
      {run.state === "creating" && (
        <div className="alert alert-info myapp-small-alert" data-testid="run-creating">
          <i className="fa fa-spinner fa-spin" /> {run.message}
        </div>
      )}
      <div className="myapp-legend">
        {["running", "succeeded", "failed", "pending", "upstream_failed", "stopped", "skipped"].map((s) => (
          <span key={s}><StateBadge state={s} /></span>
        ))}
        <span className="myapp-muted small">{t("legend_retries")}</span>
      </div>
      <div className="myapp-run-body">
        <div className="myapp-run-dag" data-testid="run-dag">
          <div className="btn-group btn-group-xs myapp-view-switch">
            <button type="button" className={"btn btn-default" + (view === "graph" ? " active" : "")} data-testid="view-graph"
                    onClick={() => setView("graph")}><i className="fa fa-project-diagram" /> {t("graph")}</button>
            <button type="button" className={"btn btn-default" + (view === "gantt" ? " active" : "")} data-testid="view-gantt"
                    onClick={() => setView("gantt")}><i className="fa fa-stream" /> {t("gantt")}</button>
            <a className="btn btn-default" href={`/pipelines/${run.pipeline_id}/grid`}><i className="fa fa-th" /> {t("grid")}</a>
          </div>
          {view === "gantt" && <Gantt tasks={orderTasks(run.tasks, graph)} onPick={setSelected} />}
          {view === "graph" && <ReactFlow nodes={nodes} edges={edges} nodeTypes={nodeTypes} nodesDraggable={false} nodesConnectable={false}
                     elementsSelectable onNodeClick={(_, n) => setSelected(n.id)} onPaneClick={() => setSelected(null)}
                     fitView fitViewOptions={{ padding: 0.25, maxZoom: 1.2 }} proOptions={{ hideAttribution: true }}
                     deleteKeyCode={null}>
            <Background gap={16} />
            <Controls showInteractive={false} />
          </ReactFlow>}
        </div>
        <div className="myapp-run-side" data-testid="task-panel">
          {task && <SlicePicker tasks={run.tasks} selected={task.name} onPick={setSelected} />}
          {task && canRetrySlice && (
            <button type="button" className="btn btn-warning btn-xs myapp-retry-slice" data-action="retry-slice"
                    title={t("retry_slice_help")} onClick={() => retrySlice(task.name)}>
              <i className="fa fa-redo" /> {t("retry_slice", { name: task.name })}
            </button>
          )}
          {task ? <TaskPanel runId={run.id} task={task} /> : <div className="myapp-empty">{t("click_a_node")}</div>}
        </div>
      </div>
      {copying && <CopyDialog run={run} onClose={() => setCopying(false)} />}
    </div>
  );
}
