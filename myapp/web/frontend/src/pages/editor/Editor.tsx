// The drag-and-drop pipeline editor: palette, canvas (React Flow), side panel, dialogs.
import { DragEvent, useCallback, useEffect, useMemo, useState } from "react";
import {
  Background, Connection, Controls, Edge, EdgeChange, MiniMap, NodeChange, ReactFlow, ReactFlowProvider,
  applyEdgeChanges, applyNodeChanges, useReactFlow,
} from "@xyflow/react";
import yaml from "js-yaml";
import { api, ApiError, can, currentMe, get, post } from "../../api";
import { t } from "../../i18n";
import { EditorNode } from "../../graph";
import { ErrorBox, errorText, toast } from "../../ui";
import { Palette, CUSTOM_REF, DRAG_TYPE } from "./Palette";
import { TaskForm, sourceOptions } from "./TaskForm";
import { DebugDialog, ParamsDialog, RunDialog, ScheduleDialog, YamlDialog } from "./Dialogs";
import { BackfillDialog, BackfillInfo, backfillOf } from "../../backfill";
import {
  PipelineMeta, Template, TaskData, TaskNode, ancestors, emptyMeta, findTemplate, fromDefinition, layout,
  allEdges, cycleError, descendants, localErrors, makeEdge, newNodeId, newTask, taskOfField, taskOutputs, toDefinition, uniqueName, wouldCycle,
} from "./model";

const nodeTypes = { task: EditorNode };
type DialogName = "params" | "schedule" | "run" | "debug" | "yaml" | null;

interface Props { pipeline_id: number | null; version?: number | null; copy_of?: number | null; copy_version?: number | null }

export function EditorPage(props: Props) {
  return (
    <ReactFlowProvider>
      <Editor {...props} />
    </ReactFlowProvider>
  );
}

/** Keep the newest version of each template name for the palette. */
function newestTemplates(all: Template[]): Template[] {
  const byName = new Map<string, Template>();
  for (const tpl of all) {
    const old = byName.get(tpl.name);
    if (!old || tpl.version.localeCompare(old.version, undefined, { numeric: true }) > 0) byName.set(tpl.name, tpl);
  }
  return [...byName.values()];
}

async function loadDefinition(props: Props): Promise<{ def: any; version: number | null; id: number | null }> {
  if (props.copy_of) {
    const text = await api<string>("GET", `/pipelines/${props.copy_of}/export`, { raw: true, query: { version: props.copy_version } });
    const def: any = yaml.load(text);
    return { def: { ...def, name: `${def.name}-copy`.slice(0, 63) }, version: null, id: null };
  }
  if (props.pipeline_id && props.version) {
    const text = await api<string>("GET", `/pipelines/${props.pipeline_id}/export`, { raw: true, query: { version: props.version } });
    return { def: yaml.load(text), version: props.version, id: props.pipeline_id };
  }
  if (props.pipeline_id) {
    const res = await get<{ definition: any }>(`/pipelines/${props.pipeline_id}`);
    const versions = await get<{ result: { number: number }[] }>(`/pipelines/${props.pipeline_id}/versions`);
    return { def: res.definition, version: versions.result[0]?.number ?? null, id: props.pipeline_id };
  }
  return { def: null, version: null, id: null };
}

function Editor(props: Props) {
  const flow = useReactFlow();
  const readOnly = !can("Pipelines", "write");
  const canRun = can("Pipelines", "write");
  const [templates, setTemplates] = useState<Template[]>([]);
  const [projects, setProjects] = useState<string[]>(["default"]);
  const [meta, setMeta] = useState<PipelineMeta>(emptyMeta(currentMe()?.timezone));
  const [nodes, setNodes] = useState<TaskNode[]>([]);
  const [edges, setEdges] = useState<Edge[]>([]);
  const [selected, setSelected] = useState<string | null>(null);
  const [pipelineId, setPipelineId] = useState<number | null>(props.pipeline_id);
  const [version, setVersion] = useState<number | null>(null);
  const [dirty, setDirty] = useState(false);
  const [errors, setErrors] = useState<unknown>(null);
  const [backfill, setBackfill] = useState<BackfillInfo | null>(null);
  const [valid, setValid] = useState(false);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [dialog, setDialog] = useState<DialogName>(null);
  const [nameError, setNameError] = useState("");
  const [message, setMessage] = useState("");
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    (async () => {
      try {
        const [tpl, loaded] = await Promise.all([get<{ result: Template[] }>("/templates/"), loadDefinition(props)]);
        setTemplates(tpl.result);
        get<{ result: { name: string }[] }>("/projects/").then((r) => setProjects(r.result.map((p) => p.name)), () => undefined);
        if (loaded.def) {
          const state = fromDefinition(loaded.def, currentMe()?.timezone);
          setMeta(state.meta);
          setNodes(state.positioned ? state.nodes : layout(state.nodes, allEdges(state.nodes, state.edges)));
          setEdges(state.edges);
          setVersion(loaded.version);
          setPipelineId(loaded.id);
          setTimeout(() => flow.fitView({ padding: 0.2, maxZoom: 1 }), 50);
        }
      } catch (err) {
        setLoadError(err);
      }
    })();
  }, []);

  const changed = () => { setDirty(true); setValid(false); };
  const onNodesChange = useCallback((changes: NodeChange<TaskNode>[]) => {
    setNodes((ns) => applyNodeChanges(changes, ns));
    if (changes.some((c) => c.type === "position" || c.type === "remove" || c.type === "add")) changed();
  }, []);
  const onEdgesChange = useCallback((changes: EdgeChange[]) => {
    setEdges((es) => applyEdgeChanges(changes, es));
    if (changes.some((c) => c.type === "remove" || c.type === "add")) changed();
  }, []);

  // What the canvas draws and the graph checks use: explicit edges + the ones bindings imply (dashed).
  const graphEdges = useMemo(() => allEdges(nodes, edges), [nodes, edges]);

  const onConnect = (conn: Connection) => {
    if (readOnly || !conn.source || !conn.target) return;
    if (edges.some((e) => e.source === conn.source && e.target === conn.target)) return;
    if (wouldCycle(conn.source, conn.target, graphEdges)) {   // binding-implied edges count too
      toast(t("cycle_refused"), "danger");
      return;
    }
    setEdges([...edges, makeEdge(conn.source, conn.target)]);
    changed();
  };

  const addTask = (ref: string, position?: { x: number; y: number }) => {
    const template = ref === CUSTOM_REF ? null : findTemplate(templates, ref) ?? null;
    const name = uniqueName(template ? template.name : "task", nodes.map((n) => n.data.name));
    const pos = position ?? { x: 80 + (nodes.length % 4) * 230, y: 60 + Math.floor(nodes.length / 4) * 110 };
    const node: TaskNode = { id: newNodeId(), type: "task", position: pos, data: newTask(name, template), selected: true };
    setNodes([...nodes.map((n) => ({ ...n, selected: false })), node]);
    setSelected(node.id);
    setNameError("");
    changed();
  };

  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    if (readOnly) return;
    const ref = e.dataTransfer.getData(DRAG_TYPE) || e.dataTransfer.getData("text/plain");
    if (!ref) return;
    const pos = flow.screenToFlowPosition({ x: e.clientX, y: e.clientY });
    addTask(ref, { x: pos.x - 95, y: pos.y - 23 });
  };

  const selectedNode = nodes.find((n) => n.id === selected) ?? null;
  const patchTask = (id: string, patch: Partial<TaskData>) => {
    setNodes((ns) => ns.map((n) => (n.id === id ? { ...n, data: { ...n.data, ...patch, invalid: false } } : n)));
    changed();
  };

  const renameTask = (id: string, name: string) => {
    const node = nodes.find((n) => n.id === id);
    if (!node) return;
    if (!/^[A-Za-z0-9_-]{1,63}$/.test(name)) {
      setNameError(t("task_name_rule"));
      return;
    }
    if (nodes.some((n) => n.id !== id && n.data.name === name)) {
      setNameError(t("duplicate_task_name", { name }));
      return;
    }
    setNameError("");
    const old = node.data.name;
    if (old === name) return;
    setNodes((ns) => ns.map((n) => {
      const inputs = n.data.inputs.map((row) => (row.binding.kind === "task" && row.binding.ref.startsWith(old + ".")
        ? { ...row, binding: { ...row.binding, ref: name + row.binding.ref.slice(old.length) } } : row));
      return { ...n, data: { ...n.data, inputs, name: n.id === id ? name : n.data.name } };
    }));
    changed();
  };

  const deleteSelected = () => {
    if (!selected) return;
    setNodes((ns) => ns.filter((n) => n.id !== selected));
    setEdges((es) => es.filter((e) => e.source !== selected && e.target !== selected));
    setSelected(null);
    changed();
  };

  const upstream = useMemo(() => {
    if (!selectedNode) return [];
    // Any task's output may be bound except the task's own and its descendants' (that would close a
    // cycle): binding one makes that task an upstream (a dashed edge). Ancestors are listed first.
    const up = ancestors(selectedNode.id, graphEdges);
    const down = descendants(selectedNode.id, graphEdges);
    const offered = nodes.filter((n) => n.id !== selectedNode.id && !down.has(n.id));
    return [...offered.filter((n) => up.has(n.id)), ...offered.filter((n) => !up.has(n.id))]
      .map((n) => ({ task: n.data.name, outputs: taskOutputs(n.data, templates) }));
  }, [selectedNode, nodes, graphEdges, templates]);

  const doc = () => toDefinition(meta, nodes, edges, templates);

  const showErrors = (err: unknown) => {
    setErrors(err);
    const bad = new Set((err instanceof ApiError ? err.errors : []).map((e) => taskOfField(e.field)).filter(Boolean));
    setNodes((ns) => ns.map((n) => ({ ...n, data: { ...n.data, invalid: bad.has(n.data.name) } })));
  };

  const kubernetes = currentMe()?.executor === "kubernetes";
  const checkLocal = (): boolean => {
    const local = localErrors(meta, nodes, edges, kubernetes);
    if (local.length) {
      showErrors(new ApiError(400, t("fix_errors"), local, null));
      return false;
    }
    return true;
  };

  const validate = async () => {
    if (!checkLocal()) return;
    try {
      await post("/pipelines/validate", doc());
      setErrors(null);
      setValid(true);
      setNodes((ns) => ns.map((n) => ({ ...n, data: { ...n.data, invalid: false } })));
      toast(t("valid"), "success");
    } catch (err) {
      setValid(false);
      showErrors(err);
    }
  };

  const save = async (confirmBackfill = false): Promise<number | null> => {
    if (!checkLocal()) return null;
    setBusy(true);
    try {
      const res = await post<{ id: number; version: number; changed: boolean }>("/pipelines/", doc(),
        { message, confirm_backfill: confirmBackfill ? 1 : undefined });
      setBackfill(null);
      setErrors(null);
      setNodes((ns) => ns.map((n) => ({ ...n, data: { ...n.data, invalid: false } })));
      setPipelineId(res.id);
      setVersion(res.version);
      setDirty(false);
      setMessage("");
      toast(res.changed ? t("saved_version", { n: res.version }) : t("no_change", { n: res.version }), "success");
      if (window.location.pathname !== `/pipelines/${res.id}/edit`) window.history.replaceState(null, "", `/pipelines/${res.id}/edit`);
      return res.id;
    } catch (err) {
      const info = backfillOf(err);
      if (info) {  // the schedule would start more backfill runs than allowed: ask, then save again
        setBackfill(info);
        return null;
      }
      showErrors(err);
      toast(errorText(err), "danger");
      return null;
    } finally {
      setBusy(false);
    }
  };

  const saveThen = async (next: DialogName) => {
    const id = dirty || pipelineId === null ? await save() : pipelineId;
    if (id !== null) setDialog(next);
  };

  const pickError = (field: string) => {
    const name = taskOfField(field);
    const node = nodes.find((n) => n.data.name === name);
    if (node) {
      setSelected(node.id);
      setNodes((ns) => ns.map((n) => ({ ...n, selected: n.id === node.id })));
    } else if (field.startsWith("schedule")) setDialog("schedule");
    else if (field.startsWith("parameters")) setDialog("params");
  };

  const importDoc = (def: any) => {
    const state = fromDefinition(def, currentMe()?.timezone);
    setMeta(state.meta);
    setNodes(state.positioned ? state.nodes : layout(state.nodes, allEdges(state.nodes, state.edges)));
    setEdges(state.edges);
    setSelected(null);
    changed();
    setTimeout(() => flow.fitView({ padding: 0.2, maxZoom: 1 }), 50);
  };

  if (loadError) return <ErrorBox error={loadError} />;
  const selectedTemplate = selectedNode ? findTemplate(templates, selectedNode.data.template) : undefined;

  return (
    <div className="myapp-editor" data-testid="editor" data-dirty={dirty ? "1" : "0"} data-pipeline-id={pipelineId ?? ""}>
      <div className="myapp-toolbar">
        <input className="form-control input-sm myapp-name-input" name="pipeline-name" placeholder={t("pipeline_name")}
               value={meta.name} disabled={readOnly}
               onChange={(e) => { setMeta({ ...meta, name: e.target.value }); changed(); }} />
        <select className="form-control input-sm" name="pipeline-project" value={meta.project} disabled={readOnly}
                onChange={(e) => { setMeta({ ...meta, project: e.target.value }); changed(); }}>
          {[...new Set([meta.project, ...projects])].map((p) => <option key={p} value={p}>{p}</option>)}
        </select>
        <span className="myapp-version" data-testid="version-label">
          {version ? t("version_n", { n: version }) : t("not_saved")}{dirty ? " *" : ""}
        </span>
        {readOnly && <span className="label label-default" data-testid="read-only">{t("read_only")}</span>}
        <div className="btn-group btn-group-sm">
          <button type="button" className="btn btn-default" data-testid="open-params" onClick={() => setDialog("params")}>
            <i className="fa fa-sliders-h" /> {t("global_parameters")}</button>
          <button type="button" className="btn btn-default" data-testid="open-schedule" onClick={() => setDialog("schedule")}>
            <i className="fa fa-clock" /> {t("schedule")}</button>
          <button type="button" className="btn btn-default" data-testid="auto-layout"
                  onClick={() => { setNodes((ns) => layout(ns, graphEdges)); changed(); setTimeout(() => flow.fitView({ padding: 0.2, maxZoom: 1 }), 50); }}
                  disabled={readOnly}>
            <i className="fa fa-sitemap" /> {t("auto_layout")}</button>
          <button type="button" className="btn btn-default" data-testid="open-yaml" onClick={() => setDialog("yaml")}>
            <i className="fa fa-file-code" /> YAML</button>
        </div>
        <div className="btn-group btn-group-sm">
          <button type="button" className="btn btn-info" data-testid="validate" onClick={validate}>
            <i className={"fa " + (valid ? "fa-check-circle" : "fa-check")} /> {t("validate")}</button>
          {!readOnly && (
            <>
              <input className="form-control input-sm myapp-message-input" placeholder={t("version_message")}
                     value={message} name="version-message" onChange={(e) => setMessage(e.target.value)} />
              <button type="button" className="btn btn-primary" data-testid="save" disabled={busy} onClick={() => save()}>
                <i className="fa fa-save" /> {t("save_version")}</button>
            </>
          )}
          {canRun && (
            <button type="button" className="btn btn-success" data-testid="run" disabled={busy} onClick={() => saveThen("run")}>
              <i className="fa fa-play" /> {t("run")}</button>
          )}
        </div>
        {pipelineId !== null && (
          <span className="myapp-links">
            <a href={`/runs/?pipeline_id=${pipelineId}`}>{t("runs")}</a> · <a href={`/pipelines/${pipelineId}/versions`}>{t("versions")}</a>
          </span>
        )}
      </div>
      <ErrorBox error={errors} onPick={pickError} />
      <div className="myapp-editor-body">
        <Palette templates={newestTemplates(templates)} disabled={readOnly} onAdd={(ref) => addTask(ref)} />
        <div className="myapp-canvas" data-testid="canvas" onDragOver={(e) => { e.preventDefault(); e.dataTransfer.dropEffect = "move"; }}
             onDrop={onDrop}>
          <ReactFlow<TaskNode, Edge>
            nodes={nodes} edges={graphEdges} nodeTypes={nodeTypes}
            onNodesChange={onNodesChange} onEdgesChange={onEdgesChange} onConnect={onConnect}
            onNodeClick={(_, node) => { setSelected(node.id); setNameError(""); }}
            onPaneClick={() => setSelected(null)}
            onNodesDelete={(deleted) => { if (deleted.some((n) => n.id === selected)) setSelected(null); }}
            deleteKeyCode={readOnly ? null : ["Delete", "Backspace"]}
            nodesDraggable={!readOnly} nodesConnectable={!readOnly} elementsSelectable
            defaultViewport={{ x: 0, y: 0, zoom: 1 }} minZoom={0.2} maxZoom={2}
            defaultEdgeOptions={{ type: "smoothstep" }} proOptions={{ hideAttribution: true }}>
            <Background gap={16} />
            <Controls showInteractive={false} />
            <MiniMap pannable zoomable />
          </ReactFlow>
          {nodes.length === 0 && <div className="myapp-canvas-hint">{readOnly ? t("empty_pipeline") : t("drop_here")}</div>}
        </div>
        <div className="myapp-side" data-testid="side-panel">
          {selectedNode ? (
            <TaskForm key={selectedNode.id} data={selectedNode.data} template={selectedTemplate} meta={meta}
                      options={sourceOptions(meta, upstream)} readOnly={readOnly} nameError={nameError}
                      canDebug={pipelineId !== null} kubernetes={kubernetes}
                      errors={(errors instanceof ApiError ? errors.errors : []).filter((e) => taskOfField(e.field) === selectedNode.data.name)}
                      onChange={(patch) => patchTask(selectedNode.id, patch)}
                      onRename={(name) => renameTask(selectedNode.id, name)}
                      onDelete={deleteSelected} onDebug={() => saveThen("debug")} />
          ) : (
            <PipelinePanel meta={meta} readOnly={readOnly} onChange={(m) => { setMeta(m); changed(); }} tasks={nodes.length} />
          )}
        </div>
      </div>
      {dialog === "params" && <ParamsDialog meta={meta} readOnly={readOnly} onClose={() => setDialog(null)}
                                            onApply={(parameters) => { setMeta({ ...meta, parameters }); changed(); }} />}
      {dialog === "schedule" && <ScheduleDialog meta={meta} readOnly={readOnly} onClose={() => setDialog(null)}
                                                onApply={(schedule) => { setMeta({ ...meta, schedule }); changed(); }} />}
      {dialog === "run" && pipelineId !== null && <RunDialog pipelineId={pipelineId} meta={meta} onClose={() => setDialog(null)} />}
      {dialog === "debug" && pipelineId !== null && selectedNode && (
        <DebugDialog pipelineId={pipelineId} task={selectedNode.data} meta={meta} onClose={() => setDialog(null)} />
      )}
      {dialog === "yaml" && <YamlDialog doc={doc()} readOnly={readOnly} onImport={importDoc} onClose={() => setDialog(null)}
                                        check={(def) => { const s = fromDefinition(def); return cycleError(s.nodes, s.edges); }} />}
      {backfill && <BackfillDialog info={backfill} onClose={() => setBackfill(null)} onConfirm={() => save(true)} />}
    </div>
  );
}

function PipelinePanel({ meta, readOnly, tasks, onChange }: {
  meta: PipelineMeta; readOnly: boolean; tasks: number; onChange: (m: PipelineMeta) => void;
}) {
  return (
    <div className="myapp-task-form" data-testid="pipeline-panel">
      <h4>{t("pipeline")}</h4>
      <div className="form-group"><label>{t("description")}</label>
        <textarea className="form-control input-sm" rows={3} name="pipeline-description" value={meta.description}
                  disabled={readOnly} onChange={(e) => onChange({ ...meta, description: e.target.value })} /></div>
      <div className="form-group"><label>{t("run_timeout")}</label>
        <input className="form-control input-sm" type="number" min={0} name="pipeline-timeout" value={meta.timeout}
               disabled={readOnly} onChange={(e) => onChange({ ...meta, timeout: Number(e.target.value) })} /></div>
      <p className="myapp-muted">{t("n_tasks", { n: tasks })} · {t("n_parameters", { n: meta.parameters.length })} ·{" "}
        {meta.schedule.type === "crontab" ? `${t("schedule_crontab")} ${meta.schedule.cron} (${meta.schedule.timezone})` : t("schedule_once")}</p>
      <p className="myapp-muted small">{t("editor_help")}</p>
    </div>
  );
}
