// The editor's data: the §2 pipeline document <-> canvas nodes and edges, graph checks, layout.
import dagre from "@dagrejs/dagre";
import type { Edge, Node } from "@xyflow/react";

export interface ParamDef {
  type?: string;
  default?: unknown;
  required?: boolean;
  description?: string;
  label?: string;
  choices?: string[];
  minimum?: number;
  maximum?: number;
  pattern?: string;
  script?: boolean;
}
export interface OutputDef { name: string; path: string; type: "text" | "file" | "files"; description?: string }
export interface Template {
  name: string;
  version: string;
  kind?: string;
  category?: string;
  description?: string;
  image?: string;
  command?: string[];
  parameters?: Record<string, ParamDef>;
  outputs?: OutputDef[];
  resources?: Record<string, unknown>;
  readme?: string;
  monitoring?: boolean;
  extra?: Record<string, unknown>;   // kind-specific settings: a SeqPod's `steps` (docs/templates.md §9)
}

export type BindingKind = "literal" | "task" | "param";
export interface Binding { kind: BindingKind; value: string; ref: string }
export interface InputRow { name: string; binding: Binding }
export interface Resources { cpu?: string; memory?: string; gpu?: number; package?: string }
/** One workspace a task mounts (docs/templates.md §10): `workspaces: {NAME: {claim, path}}`. */
export interface WorkspaceRow { name: string; claim: string; path: string }

export interface TaskData extends Record<string, unknown> {
  name: string;
  template: string | null;
  image: string;
  command: string[];
  args: Record<string, unknown>;
  inputs: InputRow[];
  outputs: OutputDef[];
  retries: number;
  retry_delay: number;
  timeout: number;
  resources: Resources;
  env: Record<string, string>;
  description: string;
  trigger_rule: string;   // docs/rules.md R13; "all_success" is the default and is not written
  when: string;           // docs/rules.md R14; a Jinja condition, "" for none
  workspaces: WorkspaceRow[];       // in the order read; written as the `workspaces` mapping
  slices: SlicesData | null;        // docs/rules.md R15; null: not fanned out
  kept?: Record<string, unknown>;   // task keys without a form here (a newer field): written back as read
  invalid?: boolean;
}

/** A task's `slices` block (docs/rules.md R15): the inputs whose lists it is fanned out over, and how. */
export interface SlicesData {
  inputs: string[];
  parallelism: number;            // 0: no cap
  continue_on_failed: boolean;
  success_ratio: number | null;   // null: every slice must succeed
}

/** Read a task's `slices` block into the form (anything that is not a mapping reads as none). */
export function parseSlices(raw: any): SlicesData | null {
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) return null;
  return {
    inputs: Array.isArray(raw.inputs) ? raw.inputs.map(String) : [],
    parallelism: Number(raw.parallelism ?? 0) || 0,
    continue_on_failed: raw.continue_on_failed === true,
    success_ratio: typeof raw.success_ratio === "number" ? raw.success_ratio : null,
  };
}

/** Write the form as the `slices` block the server stores (defaults omitted); null when no input is sliced. */
export function slicesToDoc(d: SlicesData | null): Record<string, unknown> | null {
  if (!d || !d.inputs.length) return null;
  const out: Record<string, unknown> = { inputs: d.inputs };
  if (d.parallelism) out.parallelism = d.parallelism;
  if (d.continue_on_failed) out.continue_on_failed = true;
  if (d.success_ratio !== null && !Number.isNaN(d.success_ratio)) out.success_ratio = d.success_ratio;
  return out;
}

// The task keys the editor reads into its form and writes back itself; any other key of a stored
// task (a newer field) is kept as it came and saved unchanged, never dropped.
const EDITED_KEYS = new Set(["name", "template", "image", "command", "args", "inputs", "outputs", "retries",
  "retry_delay", "timeout", "resources", "env", "description", "trigger_rule", "when", "workspaces", "slices", "depends_on",
  "position"]);

export const TRIGGER_RULES = ["all_success", "all_done", "one_failed", "none_failed", "all_skipped"];

export interface GlobalParam { name: string; default?: string | null; description?: string; required?: boolean; secret?: boolean }
export interface Schedule {
  type: "once" | "crontab";
  cron: string;
  timezone: string;
  start_time: string;
  depends_on_past: boolean;
  expired_limit: number;
  max_active_runs: number;
  enabled: boolean;
}
export interface PipelineMeta {
  name: string;
  project: string;
  description: string;
  timeout: number;
  parameters: GlobalParam[];
  outputs: { name: string; from: string }[];
  schedule: Schedule;
  alerts?: unknown;
}

export type TaskNode = Node<TaskData, "task">;

export const NODE_W = 190;
export const NODE_H = 46;
export const PARAMS = "params";

export function emptyMeta(timezone = "UTC"): PipelineMeta {
  return {
    name: "", project: "default", description: "", timeout: 0, parameters: [], outputs: [],
    schedule: {
      type: "once", cron: "", timezone, start_time: "", depends_on_past: false, expired_limit: 1,
      max_active_runs: 1, enabled: true,
    },
  };
}

let seq = 0;
export function newNodeId(): string {
  seq += 1;
  return `n${Date.now().toString(36)}${seq}`;
}

export function templateName(ref: string | null | undefined): string {
  return (ref ?? "").split("@")[0];
}

export function findTemplate(templates: Template[], ref: string | null | undefined): Template | undefined {
  if (!ref) return undefined;
  const [name, version] = ref.split("@");
  return templates.find((t) => t.name === name && (!version || t.version === version)) ??
    templates.find((t) => t.name === name);
}

export function uniqueName(base: string, taken: Iterable<string>): string {
  const names = new Set(taken);
  const clean = base.replace(/[^A-Za-z0-9_-]/g, "-").slice(0, 50) || "task";
  if (!names.has(clean)) return clean;
  for (let i = 2; ; i++) {
    const name = `${clean}-${i}`;
    if (!names.has(name)) return name;
  }
}

export function newTask(name: string, template: Template | null): TaskData {
  return {
    name, template: template ? template.name : null, image: template ? "" : "python:3.12-slim",
    command: [], args: {}, inputs: [], outputs: [], retries: 0, retry_delay: 0, timeout: 0, resources: {},
    env: {}, description: "", trigger_rule: "all_success", when: "", workspaces: [], slices: null,
  };
}

/** Read a task's `workspaces` mapping into form rows (a value that is not a mapping reads as empty). */
export function parseWorkspaces(raw: unknown): WorkspaceRow[] {
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) return [];
  return Object.entries(raw as Record<string, unknown>).map(([name, value]) => {
    const v = value && typeof value === "object" ? (value as Record<string, unknown>) : {};
    return { name, claim: textOf(v.claim), path: textOf(v.path) };
  });
}

/** Write form rows as the `workspaces` mapping the server stores (empty claim or path omitted). */
export function workspacesToDoc(rows: WorkspaceRow[]): Record<string, { claim?: string; path?: string }> {
  const out: Record<string, { claim?: string; path?: string }> = {};
  for (const row of rows) {
    const name = row.name.trim();
    if (!name) continue;
    const ws: { claim?: string; path?: string } = {};
    if (row.claim.trim()) ws.claim = row.claim.trim();
    if (row.path.trim()) ws.path = row.path.trim();
    out[name] = ws;
  }
  return out;
}

export const WORKSPACE_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** Return how a project's workspace claims are named on Kubernetes (`PROJECT-`): executor/kubernetes/pod_plan.py. */
export function claimPrefix(project: string): string {
  return (project.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "") || "default") + "-";
}

/** Return what is wrong with a task's workspace rows, by field (`tasks[T].workspaces.NAME.path`), as the server words it. */
export function workspaceErrors(task: string, rows: WorkspaceRow[], project: string, kubernetes: boolean):
    { field: string; message: string; row: number }[] {
  const out: { field: string; message: string; row: number }[] = [];
  const seen = new Set<string>();
  rows.forEach((row, i) => {
    const name = row.name.trim();
    const where = `tasks[${task}].workspaces.${name || i}`;
    if (!WORKSPACE_NAME.test(name)) {
      out.push({ field: where, row: i, message: "a workspace name is 1-63 characters of a-z, 0-9 and - (not at the ends)" });
    } else if (seen.has(name)) {
      out.push({ field: where, row: i, message: "bound twice" });
    }
    seen.add(name);
    const path = row.path.trim();
    if (path && (!path.startsWith("/") || path === "/" || path.split("/").includes(".."))) {
      out.push({ field: `${where}.path`, row: i, message: "must be an absolute path without '..' (not /)" });
    }
    const prefix = claimPrefix(project);
    if (kubernetes && !row.claim.trim()) {
      out.push({ field: `${where}.claim`, row: i, message: "a workspace needs a PersistentVolumeClaim on the Kubernetes executor" });
    } else if (kubernetes && !row.claim.trim().startsWith(prefix)) {
      out.push({ field: `${where}.claim`, row: i, message: `'${row.claim.trim()}' is not one of the project's claims (named ${prefix}...)` });
    }
  });
  return out;
}

function parseBinding(raw: unknown): Binding {
  if (raw && typeof raw === "object" && !Array.isArray(raw)) {
    const obj = raw as Record<string, unknown>;
    if (typeof obj.from === "string") {
      const ref = obj.from;
      return { kind: ref.startsWith(PARAMS + ".") ? "param" : "task", value: "", ref };
    }
    if ("value" in obj) return { kind: "literal", value: textOf(obj.value), ref: "" };
  }
  return { kind: "literal", value: textOf(raw), ref: "" };
}

function textOf(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function parsePosition(raw: unknown, index: number): { x: number; y: number } {
  if (Array.isArray(raw) && raw.length === 2) return { x: Number(raw[0]), y: Number(raw[1]) };
  if (raw && typeof raw === "object") {
    const p = raw as { x?: number; y?: number };
    return { x: Number(p.x ?? 0), y: Number(p.y ?? 0) };
  }
  return { x: 80 + (index % 4) * 230, y: 60 + Math.floor(index / 4) * 120 };
}

/** Build the editor state from a §2 document (as returned by GET /pipelines/<id>). */
export function fromDefinition(def: any, timezone = "UTC"): { meta: PipelineMeta; nodes: TaskNode[]; edges: Edge[]; positioned: boolean } {
  const base = emptyMeta(timezone);
  const sch = def?.schedule ?? {};
  const meta: PipelineMeta = {
    name: def?.name ?? "", project: def?.project ?? "default", description: def?.description ?? "",
    timeout: Number(def?.timeout ?? 0), parameters: (def?.parameters ?? []).map((p: any) => ({
      name: p.name, default: p.default === undefined || p.default === null ? "" : textOf(p.default),
      description: p.description ?? "", required: Boolean(p.required), secret: Boolean(p.secret),
    })),
    outputs: def?.outputs ?? [],
    schedule: {
      ...base.schedule, type: sch.type ?? "once", cron: sch.cron ?? "", timezone: sch.timezone ?? timezone,
      start_time: sch.start_time ?? "", depends_on_past: Boolean(sch.depends_on_past),
      expired_limit: sch.expired_limit ?? 1, max_active_runs: sch.max_active_runs ?? 1, enabled: sch.enabled ?? true,
    },
    alerts: def?.alerts,
  };
  const tasks: any[] = def?.tasks ?? [];
  const ids = new Map<string, string>();
  tasks.forEach((task) => ids.set(task.name, newNodeId()));
  const positioned = tasks.length > 0 && tasks.every((task) => task.position);
  const nodes: TaskNode[] = tasks.map((task, i) => ({
    id: ids.get(task.name)!, type: "task", position: parsePosition(task.position, i),
    data: {
      name: task.name, template: task.template ?? null, image: task.image ?? "", command: task.command ?? [],
      args: { ...(task.args ?? {}) },
      inputs: Object.entries(task.inputs ?? {}).map(([name, raw]) => ({ name, binding: parseBinding(raw) })),
      outputs: (task.outputs ?? []).map((o: any) => ({ ...o, type: o.type ?? "text" })),
      retries: task.retries ?? 0, retry_delay: task.retry_delay ?? 0, timeout: task.timeout ?? 0,
      resources: { ...(task.resources ?? {}) }, env: { ...(task.env ?? {}) }, description: task.description ?? "",
      trigger_rule: task.trigger_rule ?? "all_success", when: task.when ?? "",
      workspaces: parseWorkspaces(task.workspaces),
      slices: parseSlices(task.slices),
      kept: Object.fromEntries(Object.entries(task).filter(([key]) => !EDITED_KEYS.has(key))),
    },
  }));
  // `edges` holds the explicit dependencies only: a `depends_on` entry that a binding of the task
  // already implies (the server writes implied edges into depends_on, rules P2) is drawn by
  // impliedEdges instead, so removing the binding removes it.
  const edges: Edge[] = [];
  for (const task of tasks) {
    const bound = new Set(Object.values(task.inputs ?? {}).map((raw) => boundTask(parseBinding(raw))));
    for (const dep of task.depends_on ?? []) {
      const source = ids.get(dep);
      const target = ids.get(task.name);
      if (source && target && !bound.has(dep)) edges.push(makeEdge(source, target));
    }
  }
  return { meta, nodes, edges, positioned };
}

/** Return the task a binding reads from (`from: task.output`), or null. */
export function boundTask(b: Binding): string | null {
  if (b.kind !== "task" || !b.ref.includes(".")) return null;
  return b.ref.slice(0, b.ref.indexOf("."));
}

/** Return the edges the input bindings imply (dashed) that no explicit edge already draws. */
export function impliedEdges(nodes: TaskNode[], edges: Edge[]): Edge[] {
  const idOf = new Map(nodes.map((n) => [n.data.name, n.id]));
  const have = new Set(edges.map((e) => `${e.source}>${e.target}`));
  const out: Edge[] = [];
  for (const node of nodes) {
    for (const row of node.data.inputs) {
      const source = idOf.get(boundTask(row.binding) ?? "");
      if (!source || source === node.id || have.has(`${source}>${node.id}`)) continue;
      have.add(`${source}>${node.id}`);
      out.push({ ...makeEdge(source, node.id), id: `i-${source}-${node.id}`, deletable: false,
        className: "myapp-edge-implied", style: { strokeDasharray: "6 4" }, data: { implied: true } });
    }
  }
  return out;
}

/** Return the explicit edges plus the binding-implied ones: the whole graph. */
export function allEdges(nodes: TaskNode[], edges: Edge[]): Edge[] {
  return [...edges, ...impliedEdges(nodes, edges)];
}

export function makeEdge(source: string, target: string): Edge {
  return { id: `e-${source}-${target}`, source, target, type: "smoothstep", markerEnd: { type: "arrowclosed" as any } };
}

function bindingToShort(b: Binding): unknown {
  if (b.kind === "task" || b.kind === "param") return { from: b.ref };
  return b.value;
}

function numberOr(value: unknown, fallback: number): number {
  const n = Number(value);
  return Number.isFinite(n) ? n : fallback;
}

/** Convert one argument value from the form into what the document holds (empty = omitted). */
function argValue(defn: ParamDef | undefined, value: unknown): unknown {
  if (value === undefined || value === null || value === "") return undefined;
  if (defn?.type === "boolean") return value === true || value === "true";
  if ((defn?.type === "integer" || defn?.type === "number") && typeof value === "string" &&
      value.trim() !== "" && Number.isFinite(Number(value)) && !value.includes("{{")) {
    return Number(value);
  }
  return value;
}

/** Build the §2 document (what POST /pipelines/ saves) from the editor state. */
export function toDefinition(meta: PipelineMeta, nodes: TaskNode[], edges: Edge[], templates: Template[]): any {
  const nameOf = new Map(nodes.map((n) => [n.id, n.data.name]));
  const taskNames = new Set(nameOf.values());
  const tasks = nodes.map((node) => {
    const d = node.data;
    const template = findTemplate(templates, d.template);
    const out: any = { name: d.name };
    if (d.description) out.description = d.description;
    if (d.template) {
      out.template = d.template;
      if (d.image) out.image = d.image;   // a template task's own image (else the template's) is kept
      const args: Record<string, unknown> = {};
      for (const [key, value] of Object.entries(d.args)) {
        const v = argValue(template?.parameters?.[key], value);
        if (v !== undefined && !d.inputs.some((row) => row.name === key)) args[key] = v;
      }
      if (Object.keys(args).length) out.args = args;
    } else {
      out.image = d.image;
      out.command = d.command.filter((part) => part !== "");
    }
    // Explicit upstreams first, then the binding-implied ones, once each (what the server stores).
    const deps = edges.filter((e) => e.target === node.id).map((e) => nameOf.get(e.source)).filter(Boolean) as string[];
    for (const row of d.inputs) {
      const up = boundTask(row.binding);
      if (row.name && up && up !== d.name && taskNames.has(up)) deps.push(up);
    }
    const unique = [...new Set(deps)];
    if (unique.length) out.depends_on = unique;
    const inputs: Record<string, unknown> = {};
    for (const row of d.inputs) if (row.name) inputs[row.name] = bindingToShort(row.binding);
    if (Object.keys(inputs).length) out.inputs = inputs;
    const outputs = d.outputs.filter((o) => o.name);
    // `...o` keeps what the form does not edit (an output's description).
    if (outputs.length) out.outputs = outputs.map((o) => ({ ...o, name: o.name, path: o.path, type: o.type || "text" }));
    if (d.retries) out.retries = numberOr(d.retries, 0);
    if (d.retry_delay) out.retry_delay = numberOr(d.retry_delay, 0);
    if (d.timeout) out.timeout = numberOr(d.timeout, 0);
    if (d.trigger_rule && d.trigger_rule !== "all_success") out.trigger_rule = d.trigger_rule;
    if (d.when && d.when.trim()) out.when = d.when.trim();
    const res: Record<string, unknown> = {};
    if (d.resources.cpu) res.cpu = d.resources.cpu;
    if (d.resources.memory) res.memory = d.resources.memory;
    if (d.resources.gpu) res.gpu = numberOr(d.resources.gpu, 0);
    if (d.resources.package) res.package = d.resources.package;
    if (Object.keys(res).length) out.resources = res;
    const env = Object.fromEntries(Object.entries(d.env).filter(([k]) => k));
    if (Object.keys(env).length) out.env = env;
    const workspaces = workspacesToDoc(d.workspaces ?? []);
    if (Object.keys(workspaces).length) out.workspaces = workspaces;
    const slices = slicesToDoc(d.slices ?? null);
    if (slices) out.slices = slices;
    Object.assign(out, d.kept ?? {});
    out.position = [Math.round(node.position.x), Math.round(node.position.y)];
    return out;
  });
  // Defaults are omitted as the server's canonical form omits them (core/pipeline_spec.py), so the
  // YAML the editor shows is the export of what it saves.
  const s = meta.schedule;
  const schedule: any = {};
  if (s.type !== "once") schedule.type = s.type;
  if (s.cron) schedule.cron = s.cron;
  schedule.timezone = s.timezone || "UTC";
  if (s.start_time) schedule.start_time = s.start_time;
  if (s.depends_on_past) schedule.depends_on_past = true;
  if (numberOr(s.expired_limit, 1) !== 1) schedule.expired_limit = numberOr(s.expired_limit, 1);
  if (numberOr(s.max_active_runs, 1) !== 1) schedule.max_active_runs = numberOr(s.max_active_runs, 1);
  if (!s.enabled) schedule.enabled = false;
  const doc: any = { name: meta.name };
  if (meta.project && meta.project !== "default") doc.project = meta.project;
  if (meta.description) doc.description = meta.description;
  const parameters = meta.parameters.filter((p) => p.name).map((p) => {
    const param: any = { name: p.name };
    if (p.default !== undefined && p.default !== null && p.default !== "") param.default = p.default;
    if (p.description) param.description = p.description;
    if (p.required) param.required = true;
    if (p.secret) param.secret = true;
    return param;
  });
  if (parameters.length) doc.parameters = parameters;
  if (meta.outputs.length) doc.outputs = meta.outputs;
  doc.schedule = schedule;
  if (meta.timeout) doc.timeout = numberOr(meta.timeout, 0);
  if (meta.alerts && Object.keys(meta.alerts as object).length) doc.alerts = meta.alerts;
  doc.tasks = tasks;
  return doc;
}

/** Return the ids of every ancestor of `id` (following edges backwards). */
export function ancestors(id: string, edges: Edge[]): Set<string> {
  const seen = new Set<string>();
  const todo = [id];
  while (todo.length) {
    const cur = todo.pop()!;
    for (const e of edges) {
      if (e.target === cur && !seen.has(e.source)) {
        seen.add(e.source);
        todo.push(e.source);
      }
    }
  }
  return seen;
}

/** Return the ids of every descendant of `id` (following edges forwards). */
export function descendants(id: string, edges: Edge[]): Set<string> {
  return ancestors(id, edges.map((e) => ({ ...e, source: e.target, target: e.source })));
}

/** Return whether adding source -> target would close a cycle (or is a self-loop). */
export function wouldCycle(source: string, target: string, edges: Edge[]): boolean {
  return source === target || ancestors(source, edges).has(target);
}

/** Return the outputs a task offers downstream: its template's, overridden and extended by its own. */
export function taskOutputs(data: TaskData, templates: Template[]): OutputDef[] {
  const merged = new Map<string, OutputDef>();
  for (const o of findTemplate(templates, data.template)?.outputs ?? []) merged.set(o.name, o);
  for (const o of data.outputs) if (o.name) merged.set(o.name, o);
  return [...merged.values()];
}

/** Lay the graph out top to bottom with dagre; return nodes with new positions. */
export function layout<N extends Node>(nodes: N[], edges: Edge[]): N[] {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "TB", nodesep: 40, ranksep: 70, marginx: 20, marginy: 20 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of nodes) g.setNode(n.id, { width: NODE_W, height: NODE_H });
  for (const e of edges) g.setEdge(e.source, e.target);
  dagre.layout(g);
  return nodes.map((n) => {
    const p = g.node(n.id) as { x: number; y: number } | undefined;
    return p ? { ...n, position: { x: p.x - NODE_W / 2, y: p.y - NODE_H / 2 } } : n;
  });
}

/** Return the task name an error field names (`tasks[load].inputs.day.from` -> load). */
export function taskOfField(field: string): string | null {
  const m = /^tasks\[([^\]]+)\]/.exec(field);
  return m ? m[1] : null;
}

/** Check what can be checked in the browser before asking the server. */
export function localErrors(meta: PipelineMeta, nodes: TaskNode[], edges: Edge[] = [], kubernetes = false):
    { field: string; message: string }[] {
  const errors: { field: string; message: string }[] = [];
  if (!/^[a-z0-9-]{1,63}$/.test(meta.name)) {
    errors.push({ field: "name", message: "1-63 characters of a-z, 0-9 and -" });
  }
  const seen = new Set<string>();
  for (const n of nodes) {
    if (seen.has(n.data.name)) errors.push({ field: `tasks[${n.data.name}].name`, message: "duplicate task name" });
    seen.add(n.data.name);
  }
  const cycle = cycleError(nodes, edges);
  if (cycle) errors.push(cycle);
  for (const n of nodes) {
    errors.push(...workspaceErrors(n.data.name, n.data.workspaces ?? [], meta.project, kubernetes)
      .map(({ field, message }) => ({ field, message })));
  }
  return errors;
}

/** Return the cycle of the graph (explicit edges + bindings) in the server's words (core/validate.py), or null. */
export function cycleError(nodes: TaskNode[], edges: Edge[]): { field: string; message: string } | null {
  const all = allEdges(nodes, edges);
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const down = new Map<string, string[]>(nodes.map((n) => [n.id, []]));
  for (const e of all) down.get(e.source)?.push(e.target);
  const color = new Map<string, number>();
  const stack: string[] = [];
  let cycle: string[] | null = null;
  const visit = (id: string): void => {
    color.set(id, 1);
    stack.push(id);
    for (const next of down.get(id) ?? []) {
      if (cycle) return;
      if (color.get(next) === 1) { cycle = [...stack.slice(stack.indexOf(next)), next]; return; }
      if (!color.get(next)) visit(next);
    }
    stack.pop();
    color.set(id, 2);
  };
  for (const n of nodes) if (!cycle && !color.get(n.id)) visit(n.id);
  if (!cycle) return null;
  const ids: string[] = cycle;
  const names = ids.map((id) => byId.get(id)!.data.name);
  const bound: string[] = [];
  let field = `tasks[${names[0]}].depends_on`;
  for (let i = 0; i + 1 < ids.length; i++) {
    const [up, downId] = [ids[i], ids[i + 1]];
    if (edges.some((e) => e.source === up && e.target === downId)) continue;
    const task = byId.get(downId)!.data;
    const row = task.inputs.find((r) => boundTask(r.binding) === names[i]);
    if (!row) continue;
    bound.push(`${task.name}'s input ${row.name} is bound to ${row.binding.ref}`);
    if (i + 1 === ids.length - 1) field = `tasks[${task.name}].inputs.${row.name}.from`;
  }
  return { field, message: `the graph has a cycle: ${names.join(" -> ")}${bound.length ? ` (${bound.join("; ")})` : ""}` };
}
