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
      <Handle type="source" position={Position.Bottom} isConnectable={false} />
    </div>
  );
}
