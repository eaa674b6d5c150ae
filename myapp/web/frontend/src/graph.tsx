// Node views shared by the editor canvas and the run page's DAG.
import { Handle, NodeProps, Position } from "@xyflow/react";
import type { Node } from "@xyflow/react";
import { stateColor, stateLabel } from "./ui";
import type { TaskData } from "./pages/editor/model";
import { templateName } from "./pages/editor/model";
import { t } from "./i18n";

export function EditorNode({ data, selected }: NodeProps<Node<TaskData, "task">>) {
  const kind = data.template ? templateName(data.template) : t("custom_task");
  return (
    <div className={"myapp-node" + (selected ? " selected" : "") + (data.invalid ? " invalid" : "")}
         data-task={data.name} title={data.description || data.name}>
      <Handle type="target" position={Position.Top} />
      <div className="myapp-node-name">{data.name}</div>
      <div className="myapp-node-kind">{kind}</div>
      <Handle type="source" position={Position.Bottom} />
    </div>
  );
}

export interface RunNodeData extends Record<string, unknown> {
  name: string;
  state: string;
  try_number: number;
  slices?: Record<string, number>; // a sliced task (rules R15): how many of its slices are in each state
}

const SLICE_PATTERN = /^(.+)\[(\d+)\]$/;

/** Return [task, index] when `name` is a slice's name (`train[3]`, rules R15), else null. */
export function sliceOf(name: string): [string, number] | null {
  const m = SLICE_PATTERN.exec(name);
  return m ? [m[1], Number(m[2])] : null;
}

/** Count the slices of each sliced task by state: {task: {state: n}}. */
export function sliceCounts(tasks: { name: string; state: string }[]): Map<string, Record<string, number>> {
  const out = new Map<string, Record<string, number>>();
  for (const ti of tasks) {
    const of = sliceOf(ti.name);
    if (!of) continue;
    const counts = out.get(of[0]) ?? {};
    counts[ti.state] = (counts[ti.state] ?? 0) + 1;
    out.set(of[0], counts);
  }
  return out;
}

const SLICE_ORDER = ["succeeded", "running", "queued", "up_for_retry", "pending", "failed", "upstream_failed", "stopped", "skipped"];

function SliceCounts({ counts }: { counts: Record<string, number> }) {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  return (
    <div className="myapp-node-slices" data-testid="slice-counts">
      <span className="myapp-slice-total">{t("slices_n", { n: total })}</span>
      {SLICE_ORDER.filter((s) => counts[s]).map((s) => (
        <span key={s} className="myapp-slice-count" data-state={s} title={stateLabel(s)}
              style={{ background: stateColor(s) }}>{counts[s]}</span>
      ))}
    </div>
  );
}

/** The label of a run node: the name, then its try number in brackets once it has started (as the CLI shows it). */
export function runNodeLabel(data: RunNodeData): string {
  return data.try_number > 0 ? `${data.name} (${data.try_number})` : data.name;
}

export function RunNode({ data, selected }: NodeProps<Node<RunNodeData, "runTask">>) {
  return (
    <div className={"myapp-node myapp-run-node" + (selected ? " selected" : "")}
         data-task={data.name} data-state={data.state}
         style={{ background: stateColor(data.state), borderColor: stateColor(data.state) }}
         title={stateLabel(data.state)}>
      <Handle type="target" position={Position.Top} isConnectable={false} />
      <div className="myapp-node-name">{runNodeLabel(data)}</div>
      <div className="myapp-node-kind">{stateLabel(data.state)}</div>
      {data.slices && <SliceCounts counts={data.slices} />}
      <Handle type="source" position={Position.Bottom} isConnectable={false} />
    </div>
  );
}
