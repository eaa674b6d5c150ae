// Templates: the published catalog by category (with search), and your own templates: create,
// edit, submit for review. Reads /templates/ and /user_templates/ (scope=mine).
import { useEffect, useMemo, useState } from "react";
import { api, ApiError, can, get, isMissingEndpoint, post } from "../api";
import { categoryLabel, t } from "../i18n";
import { Empty, ErrorBox, Modal, PageHeader, StateBadge, Tabs, errorText, fmtTime, toast } from "../ui";
import type { OutputDef, ParamDef, Template } from "./editor/model";
import { StepRow, StepsEditor, StepsList, localStepErrors, stepsFromExtra, stepsToExtra } from "./SeqPodSteps";

export interface UserTemplate {
  id: number; name: string; version: string; ref: string; kind: string; category: string; description: string;
  status: string; source: string; owner: string | null; project: string | null; readme: string;
  rejection_reason: string; can_edit: boolean; can_review: boolean; definition: Template;
  created_at: string; updated_at: string;
}

const PARAM_TYPES = ["string", "text", "integer", "number", "boolean", "choice", "json", "secret"];

export function ParamTable({ params }: { params: Record<string, ParamDef> | undefined }) {
  const entries = Object.entries(params ?? {});
  if (!entries.length) return <div className="myapp-muted small">{t("no_parameters")}</div>;
  return (
    <table className="table table-condensed myapp-params">
      <thead><tr><th>{t("name")}</th><th>{t("type")}</th><th>{t("default")}</th><th>{t("description")}</th></tr></thead>
      <tbody>
        {entries.map(([name, p]) => (
          <tr key={name}>
            <td><code>{name}</code>{p.required && <span className="myapp-required"> *</span>}</td>
            <td>{p.type ?? "string"}{p.choices ? `: ${p.choices.join(" | ")}` : ""}</td>
            <td>{p.default === undefined ? "" : String(p.default)}</td>
            <td>{p.label ? <b>{p.label}. </b> : null}{p.description}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Catalog() {
  const [list, setList] = useState<Template[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [query, setQuery] = useState("");
  const [open, setOpen] = useState<string | null>(null);
  useEffect(() => { get<{ result: Template[] }>("/templates/").then((r) => setList(r.result), setError); }, []);
  const groups = useMemo(() => {
    const q = query.toLowerCase();
    const out = new Map<string, Template[]>();
    for (const tpl of list ?? []) {
      if (q && !`${tpl.name} ${tpl.category} ${tpl.description}`.toLowerCase().includes(q)) continue;
      out.set(tpl.category || "general", [...(out.get(tpl.category || "general") ?? []), tpl]);
    }
    return [...out.entries()].sort(([a], [b]) => a.localeCompare(b));
  }, [list, query]);
  return (
    <div data-testid="catalog">
      <input className="form-control input-sm myapp-search" type="search" placeholder={t("search_templates")} value={query}
             onChange={(e) => setQuery(e.target.value)} />
      <ErrorBox error={error} />
      {list && groups.length === 0 && <Empty>{t("no_templates_match")}</Empty>}
      {groups.map(([cat, items]) => (
        <div key={cat} className="myapp-catalog-group">
          <h4>{categoryLabel(cat)} <span className="badge">{items.length}</span></h4>
          <div className="myapp-cards">
            {items.map((tpl) => {
              const key = `${tpl.name}@${tpl.version}`;
              return (
                <div key={key} className="myapp-card" data-template={tpl.name}>
                  <div className="myapp-card-title"><i className="fa fa-cube" /> <b>{tpl.name}</b> <small>@{tpl.version}</small>
                    <span className="label label-default pull-right">{tpl.kind ?? "pod"}</span></div>
                  <div className="myapp-muted">{tpl.description}</div>
                  {tpl.image && <div className="small"><b>{t("image")}:</b> <code>{tpl.image}</code></div>}
                  <button type="button" className="btn btn-link btn-xs" onClick={() => setOpen(open === key ? null : key)}>
                    {open === key ? t("hide_details") : t("show_details")}</button>
                  {open === key && (
                    <div>
                      <ParamTable params={tpl.parameters} />
                      {tpl.kind === "seqpod" && <StepsList extra={tpl.extra} image={tpl.image} />}
                      {(tpl.outputs ?? []).length > 0 && <div className="small"><b>{t("outputs")}:</b> {(tpl.outputs ?? []).map((o) => `${o.name} (${o.type})`).join(", ")}</div>}
                      {tpl.readme && <pre className="myapp-readme">{tpl.readme}</pre>}
                    </div>
                  )}
                </div>
              );
            })}
          </div>
        </div>
      ))}
    </div>
  );
}

interface ParamRow { name: string; type: string; default: string; required: boolean; choices: string; label: string; description: string }

function toRows(params: Record<string, ParamDef> | undefined): ParamRow[] {
  return Object.entries(params ?? {}).map(([name, p]) => ({
    name, type: p.type ?? "string", default: p.default === undefined || p.default === null ? "" : String(p.default),
    required: Boolean(p.required), choices: (p.choices ?? []).join(", "), label: p.label ?? "", description: p.description ?? "",
  }));
}

function toTemplate(base: Partial<Template>, rows: ParamRow[], outputs: OutputDef[], command: string): Record<string, unknown> {
  const parameters: Record<string, unknown> = {};
  for (const r of rows) {
    if (!r.name) continue;
    const p: Record<string, unknown> = { type: r.type };
    if (r.default !== "") p.default = r.type === "integer" || r.type === "number" ? Number(r.default) : r.type === "boolean" ? r.default === "true" : r.default;
    if (r.required) p.required = true;
    if (r.type === "choice") p.choices = r.choices.split(",").map((c) => c.trim()).filter(Boolean);
    if (r.label) p.label = r.label;
    if (r.description) p.description = r.description;
    parameters[r.name] = p;
  }
  const out: Record<string, unknown> = {
    name: base.name, version: base.version || "1", kind: base.kind || "pod", category: base.category || "general",
    description: base.description ?? "", image: base.image ?? "",
    command: command.split("\n").map((x) => x.trimEnd()).filter((x) => x !== ""), parameters,
  };
  out.outputs = outputs.filter((o) => o.name);
  out.readme = base.readme ?? "";
  return out;
}

export function TemplateForm({ existing, onClose, onSaved }: { existing: UserTemplate | null; onClose: () => void; onSaved: () => void }) {
  const def = existing?.definition;
  const [base, setBase] = useState<Partial<Template>>({
    name: def?.name ?? "", version: def?.version ?? "1", kind: def?.kind ?? "pod", category: def?.category ?? "general",
    description: def?.description ?? "", image: def?.image ?? "", readme: def?.readme ?? existing?.readme ?? "",
  });
  const [command, setCommand] = useState((def?.command ?? []).join("\n"));
  const [rows, setRows] = useState<ParamRow[]>(toRows(def?.parameters));
  const [outputs, setOutputs] = useState<OutputDef[]>(def?.outputs ?? []);
  const [steps, setSteps] = useState<StepRow[]>(() => stepsFromExtra(def?.extra));
  const [error, setError] = useState<unknown>(null);
  const seqpod = base.kind === "seqpod";
  const setRow = (i: number, patch: Partial<ParamRow>) => setRows(rows.map((r, j) => (j === i ? { ...r, ...patch } : r)));
  const save = async () => {
    setError(null);
    try {
      // keep what the form does not show (env, mounts, resources, args_style, extra...)
      const body: Record<string, unknown> = { ...(existing?.definition ?? {}), ...toTemplate(base, rows, outputs, seqpod ? "" : command) };
      // A SeqPod's steps are `extra.steps` (its other extra settings are kept); another kind has none.
      const extra: Record<string, unknown> = { ...(existing?.definition?.extra ?? {}) };
      delete extra.steps;
      if (seqpod) {
        const local = localStepErrors(steps);
        if (local.length) {
          setError(new ApiError(400, t("fix_errors"), local, null));
          return;
        }
        extra.steps = stepsToExtra(steps);
      }
      body.extra = extra;
      if (existing) await api("PUT", `/user_templates/${existing.id}`, { body });
      else await post("/user_templates/", body);
      toast(t("template_saved"), "success");
      onSaved();
      onClose();
    } catch (err) {
      setError(err);
    }
  };
  const field = (key: keyof Template, label: string, placeholder = "") => (
    <div className="form-group"><label>{label}</label>
      <input className="form-control input-sm" name={`tpl-${key}`} value={String(base[key] ?? "")} placeholder={placeholder}
             onChange={(e) => setBase({ ...base, [key]: e.target.value })} /></div>
  );
  return (
    <Modal title={existing ? t("edit_template", { ref: existing.ref }) : t("create_template")} onClose={onClose} wide testId="template-form"
           footer={<>
             <button type="button" className="btn btn-default" onClick={onClose}>{t("cancel")}</button>
             <button type="button" className="btn btn-primary" data-testid="template-save" onClick={save}>{t("save")}</button>
           </>}>
      <ErrorBox error={error} />
      <div className="myapp-grid3">
        {field("name", t("name") + " *", "my-module")}
        {field("version", t("version"), "1")}
        {field("category", t("category"), "general")}
      </div>
      <div className="myapp-grid2">
        <div className="form-group"><label>{t("kind")}</label>
          <select className="form-control input-sm" name="tpl-kind" value={base.kind} onChange={(e) => setBase({ ...base, kind: e.target.value })}>
            {["pod", "seqpod", "distributed", "resource"].map((k) => <option key={k}>{k}</option>)}
          </select></div>
        {field("image", t("image"), "python:3.12-slim")}
      </div>
      {field("description", t("description"))}
      {seqpod ? (
        <StepsEditor rows={steps} image={base.image ?? ""} errors={error instanceof ApiError ? error.errors : []}
                     onChange={setSteps} />
      ) : (
        <div className="form-group"><label>{t("command")}</label>
          <textarea className="form-control input-sm myapp-code" rows={3} name="tpl-command" value={command}
                    placeholder={"python3\n-c\n$(params.code)"} onChange={(e) => setCommand(e.target.value)} />
          <div className="help-block">{t("template_command_help")}</div></div>
      )}
      <h5>{t("parameters")}</h5>
      <table className="table table-condensed">
        <thead><tr><th>{t("name")}</th><th>{t("type")}</th><th>{t("default")}</th><th>{t("required")}</th><th>{t("choices")}</th><th>{t("description")}</th><th /></tr></thead>
        <tbody>
          {rows.map((r, i) => (
            <tr key={i}>
              <td><input className="form-control input-sm" data-testid="tpl-param-name" value={r.name} onChange={(e) => setRow(i, { name: e.target.value })} /></td>
              <td><select className="form-control input-sm" value={r.type} onChange={(e) => setRow(i, { type: e.target.value })}>
                {PARAM_TYPES.map((x) => <option key={x}>{x}</option>)}</select></td>
              <td><input className="form-control input-sm" value={r.default} onChange={(e) => setRow(i, { default: e.target.value })} /></td>
              <td><input type="checkbox" checked={r.required} onChange={(e) => setRow(i, { required: e.target.checked })} /></td>
              <td><input className="form-control input-sm" value={r.choices} disabled={r.type !== "choice"} placeholder="a, b"
                         onChange={(e) => setRow(i, { choices: e.target.value })} /></td>
              <td><input className="form-control input-sm" value={r.description} onChange={(e) => setRow(i, { description: e.target.value })} /></td>
              <td><button type="button" className="btn btn-link btn-xs" onClick={() => setRows(rows.filter((_, j) => j !== i))}><i className="fa fa-times" /></button></td>
            </tr>
          ))}
        </tbody>
      </table>
      <button type="button" className="btn btn-default btn-xs" data-testid="tpl-add-param"
              onClick={() => setRows([...rows, { name: "", type: "string", default: "", required: false, choices: "", label: "", description: "" }])}>
        <i className="fa fa-plus" /> {t("add_parameter")}</button>
      <h5>{t("outputs")}</h5>
      {outputs.map((o, i) => (
        <div key={i} className="myapp-input-row">
          <input className="form-control input-sm" placeholder={t("name")} value={o.name}
                 onChange={(e) => setOutputs(outputs.map((x, j) => (j === i ? { ...x, name: e.target.value } : x)))} />
          <input className="form-control input-sm" placeholder={t("path")} value={o.path}
                 onChange={(e) => setOutputs(outputs.map((x, j) => (j === i ? { ...x, path: e.target.value } : x)))} />
          <select className="form-control input-sm" value={o.type}
                  onChange={(e) => setOutputs(outputs.map((x, j) => (j === i ? { ...x, type: e.target.value as "text" | "file" | "files" } : x)))}>
            <option value="text">{t("output_text")}</option><option value="file">{t("output_file")}</option>
            <option value="files">{t("output_files")}</option>
          </select>
          <button type="button" className="btn btn-link btn-xs" onClick={() => setOutputs(outputs.filter((_, j) => j !== i))}><i className="fa fa-times" /></button>
        </div>
      ))}
      <button type="button" className="btn btn-default btn-xs" onClick={() => setOutputs([...outputs, { name: "", path: "", type: "text" }])}>
        <i className="fa fa-plus" /> {t("add_output")}</button>
      <div className="form-group"><label>README</label>
        <textarea className="form-control input-sm myapp-code" rows={4} value={base.readme ?? ""}
                  onChange={(e) => setBase({ ...base, readme: e.target.value })} /></div>
    </Modal>
  );
}

function MyTemplates() {
  const [list, setList] = useState<UserTemplate[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [missing, setMissing] = useState(false);
  const [editing, setEditing] = useState<UserTemplate | null | "new">(null);
  const canWrite = can("Templates", "write");
  const load = () => get<{ result: UserTemplate[] }>("/user_templates/", { scope: "mine" }).then(
    (r) => { setList(r.result); setError(null); },
    (err) => (isMissingEndpoint(err) ? setMissing(true) : setError(err)));
  useEffect(() => { load(); }, []);
  const submit = async (tpl: UserTemplate) => {
    try {
      await post(`/user_templates/${tpl.id}/submit`, {});
      toast(t("submitted_for_review", { ref: tpl.ref }), "success");
    } catch (err) {
      toast(errorText(err), "danger");
    }
    load();
  };
  if (missing) return <div className="alert alert-info" data-testid="user-templates-missing">{t("endpoint_missing", { path: "/api/v1/user_templates/" })}</div>;
  return (
    <div data-testid="my-templates">
      {canWrite && <button type="button" className="btn btn-primary btn-sm" data-testid="create-template" onClick={() => setEditing("new")}>
        <i className="fa fa-plus" /> {t("create_template")}</button>}
      <ErrorBox error={error} />
      {list && list.length === 0 && <Empty>{t("no_user_templates")}</Empty>}
      {list && list.length > 0 && (
        <table className="table table-condensed table-hover myapp-table" data-testid="my-templates-table">
          <thead><tr><th>{t("name")}</th><th>{t("category")}</th><th>{t("status")}</th><th>{t("project")}</th><th>{t("updated")}</th><th /></tr></thead>
          <tbody>
            {list.map((tpl) => (
              <tr key={tpl.id} data-template={tpl.name} data-status={tpl.status}>
                <td><b>{tpl.ref}</b><div className="myapp-muted small">{tpl.description}</div></td>
                <td>{categoryLabel(tpl.category)}</td>
                <td><StateBadge state={tpl.status === "pending" ? "pending_review" : tpl.status} />
                  {tpl.rejection_reason && <div className="text-danger small">{t("rejected_because")}: {tpl.rejection_reason}</div>}</td>
                <td>{tpl.project ?? ""}</td>
                <td>{fmtTime(tpl.updated_at)}</td>
                <td className="text-right myapp-nowrap">
                  {tpl.can_edit && <button type="button" className="btn btn-xs btn-default" data-action="edit" onClick={() => setEditing(tpl)}>
                    <i className="fa fa-pencil-alt" /> {t("edit")}</button>}{" "}
                  {tpl.can_edit && (tpl.status === "draft" || tpl.status === "rejected") && (
                    <button type="button" className="btn btn-xs btn-primary" data-action="submit" onClick={() => submit(tpl)}>
                      <i className="fa fa-paper-plane" /> {t("submit_for_review")}</button>)}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {editing !== null && <TemplateForm existing={editing === "new" ? null : editing} onClose={() => setEditing(null)} onSaved={load} />}
    </div>
  );
}

export function TemplatesPage() {
  const [tab, setTab] = useState(new URLSearchParams(window.location.search).get("tab") === "mine" ? "mine" : "catalog");
  return (
    <div data-testid="templates-page">
      <PageHeader title={t("templates")}>
        <a className="btn btn-default btn-sm" href="/templates/review"><i className="fa fa-check-square" /> {t("review")}</a>
      </PageHeader>
      <Tabs tabs={[{ id: "catalog", label: t("catalog") }, { id: "mine", label: t("my_templates") }]} active={tab} onChange={setTab} />
      <div className="myapp-tab-body">{tab === "catalog" ? <Catalog /> : <MyTemplates />}</div>
    </div>
  );
}
