// Editor dialogs: global parameters, schedule settings, run, debug one task, YAML view/import.
import { useEffect, useState } from "react";
import yaml from "js-yaml";
import { get, post } from "../../api";
import { t } from "../../i18n";
import { LogView } from "../../logs";
import { ErrorBox, Modal, StateBadge, usePolling, RUN_TERMINAL } from "../../ui";
import type { GlobalParam, PipelineMeta, Schedule, TaskData } from "./model";

export function ParamsDialog({ meta, readOnly, onApply, onClose }: {
  meta: PipelineMeta; readOnly: boolean; onApply: (params: GlobalParam[]) => void; onClose: () => void;
}) {
  const [rows, setRows] = useState<GlobalParam[]>(meta.parameters.map((p) => ({ ...p })));
  const set = (i: number, patch: Partial<GlobalParam>) => setRows(rows.map((r, j) => (j === i ? { ...r, ...patch } : r)));
  return (
    <Modal title={t("global_parameters")} onClose={onClose} wide testId="params-dialog" footer={!readOnly && (
      <>
        <button type="button" className="btn btn-default" onClick={onClose}>{t("cancel")}</button>
        <button type="button" className="btn btn-primary" data-testid="params-apply"
                onClick={() => { onApply(rows.filter((r) => r.name.trim())); onClose(); }}>{t("apply")}</button>
      </>
    )}>
      <p className="myapp-muted">{t("global_parameters_help")}</p>
      <table className="table table-condensed">
        <thead><tr><th>{t("name")}</th><th>{t("default")}</th><th>{t("description")}</th><th>{t("required")}</th><th /></tr></thead>
        <tbody>
          {rows.map((r, i) => (
            <tr key={i} data-param-row={i}>
              <td><input className="form-control input-sm" data-testid="param-name" value={r.name} disabled={readOnly}
                         onChange={(e) => set(i, { name: e.target.value })} /></td>
              <td><input className="form-control input-sm" data-testid="param-default" value={r.default ?? ""} disabled={readOnly}
                         onChange={(e) => set(i, { default: e.target.value })} /></td>
              <td><input className="form-control input-sm" value={r.description ?? ""} disabled={readOnly}
                         onChange={(e) => set(i, { description: e.target.value })} /></td>
              <td><input type="checkbox" checked={Boolean(r.required)} disabled={readOnly}
                         onChange={(e) => set(i, { required: e.target.checked })} /></td>
              <td>{!readOnly && <button type="button" className="btn btn-link btn-xs"
                                        onClick={() => setRows(rows.filter((_, j) => j !== i))}><i className="fa fa-times" /></button>}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {!readOnly && <button type="button" className="btn btn-default btn-sm" data-testid="param-add"
                            onClick={() => setRows([...rows, { name: "", default: "", description: "", required: false }])}>
        <i className="fa fa-plus" /> {t("add_parameter")}</button>}
    </Modal>
  );
}

export function ScheduleDialog({ meta, readOnly, onApply, onClose }: {
  meta: PipelineMeta; readOnly: boolean; onApply: (s: Schedule) => void; onClose: () => void;
}) {
  const [s, setS] = useState<Schedule>({ ...meta.schedule });
  const set = (patch: Partial<Schedule>) => setS({ ...s, ...patch });
  const ro = readOnly;
  return (
    <Modal title={t("schedule_settings")} onClose={onClose} testId="schedule-dialog" footer={!ro && (
      <>
        <button type="button" className="btn btn-default" onClick={onClose}>{t("cancel")}</button>
        <button type="button" className="btn btn-primary" data-testid="schedule-apply"
                onClick={() => { onApply(s); onClose(); }}>{t("apply")}</button>
      </>
    )}>
      <div className="form-group">
        <label className="radio-inline"><input type="radio" name="schedule-type" value="once" disabled={ro}
                                               checked={s.type === "once"} onChange={() => set({ type: "once" })} /> {t("schedule_once")}</label>
        <label className="radio-inline"><input type="radio" name="schedule-type" value="crontab" disabled={ro}
                                               checked={s.type === "crontab"} onChange={() => set({ type: "crontab" })} /> {t("schedule_crontab")}</label>
      </div>
      <div className="myapp-grid2">
        <div className="form-group"><label>{t("cron")}</label>
          <input className="form-control" name="cron" value={s.cron} placeholder="0 2 * * *" disabled={ro || s.type === "once"}
                 onChange={(e) => set({ cron: e.target.value })} />
          <div className="help-block">{t("cron_help")}</div></div>
        <div className="form-group"><label>{t("timezone")}</label>
          <input className="form-control" name="timezone" value={s.timezone} disabled={ro} placeholder="Asia/Shanghai"
                 onChange={(e) => set({ timezone: e.target.value })} /></div>
        <div className="form-group"><label>{t("start_time")}</label>
          <input className="form-control" name="start_time" value={s.start_time} disabled={ro} placeholder="2026-01-01T00:00:00"
                 onChange={(e) => set({ start_time: e.target.value })} />
          <div className="help-block">{t("start_time_help")}</div></div>
        <div className="form-group"><label>{t("expired_limit")}</label>
          <input className="form-control" name="expired_limit" type="number" min={0} value={s.expired_limit} disabled={ro}
                 onChange={(e) => set({ expired_limit: Number(e.target.value) })} />
          <div className="help-block">{t("expired_limit_help")}</div></div>
        <div className="form-group"><label>{t("max_active_runs")}</label>
          <input className="form-control" name="max_active_runs" type="number" min={1} value={s.max_active_runs} disabled={ro}
                 onChange={(e) => set({ max_active_runs: Number(e.target.value) })} /></div>
        <div className="form-group">
          <div className="checkbox"><label><input type="checkbox" name="depends_on_past" checked={s.depends_on_past} disabled={ro}
                                                  onChange={(e) => set({ depends_on_past: e.target.checked })} /> {t("depends_on_past")}</label></div>
          <div className="checkbox"><label><input type="checkbox" name="enabled" checked={s.enabled} disabled={ro}
                                                  onChange={(e) => set({ enabled: e.target.checked })} /> {t("schedule_enabled")}</label></div>
        </div>
      </div>
    </Modal>
  );
}

export function RunDialog({ pipelineId, meta, onClose }: { pipelineId: number; meta: PipelineMeta; onClose: () => void }) {
  const [values, setValues] = useState<Record<string, string>>(
    Object.fromEntries(meta.parameters.map((p) => [p.name, p.default ?? ""])));
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const start = async () => {
    setBusy(true);
    try {
      const res = await post<{ id: number }>(`/pipelines/${pipelineId}/runs`, { params: values });
      window.location.href = `/runs/${res.id}`;
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  return (
    <Modal title={t("run_pipeline", { name: meta.name })} onClose={onClose} testId="run-dialog" footer={
      <>
        <button type="button" className="btn btn-default" onClick={onClose}>{t("cancel")}</button>
        <button type="button" className="btn btn-success" data-testid="run-start" disabled={busy} onClick={start}>
          <i className="fa fa-play" /> {t("start_run")}</button>
      </>
    }>
      <ErrorBox error={error} />
      {meta.parameters.length === 0 && <p className="myapp-muted">{t("no_parameters")}</p>}
      {meta.parameters.map((p) => (
        <div className="form-group" key={p.name}>
          <label>{p.name}{p.required && <span className="myapp-required"> *</span>}</label>
          <input className="form-control" data-run-param={p.name} value={values[p.name] ?? ""}
                 onChange={(e) => setValues({ ...values, [p.name]: e.target.value })} />
          {p.description && <div className="help-block">{p.description}</div>}
        </div>
      ))}
    </Modal>
  );
}

interface DebugInputPlan { name: string; filled_from: "given" | "literal" | "param" | "run"; kind: string; value: string; binding: string }
interface DebugPlan { task: string; source_run_id: number | null; missing: string[]; inputs: DebugInputPlan[] }

/** Where each input of a debug run comes from, as the server decides it (the CLI's `task debug` alike). */
function sourceText(item: DebugInputPlan | undefined, plan: DebugPlan | null, edited: boolean, missing: boolean): string {
  if (edited) return t("debug_edited");
  if (missing) return "";
  if (!item) return "";
  if (item.filled_from === "run") return t("debug_from_run", { id: plan?.source_run_id ?? "?", binding: item.binding });
  if (item.filled_from === "param") return t("debug_from_param", { binding: item.binding });
  return t("debug_literal");
}

interface RunDetail { id: number; state: string; tasks: { name: string; state: string; try_number: number; message: string }[] }

export function DebugDialog({ pipelineId, task, meta, onClose }: {
  pipelineId: number; task: TaskData; meta: PipelineMeta; onClose: () => void;
}) {
  const [plan, setPlan] = useState<DebugPlan | null>(null);
  const [values, setValues] = useState<Record<string, string>>({});
  const [edited, setEdited] = useState<Set<string>>(new Set());
  const [runId, setRunId] = useState<number | null>(null);
  const [run, setRun] = useState<RunDetail | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    get<DebugPlan>(`/overview/pipelines/${pipelineId}/debug_inputs`, { task: task.name }).then((p) => {
      setPlan(p);
      const next: Record<string, string> = {};
      for (const row of task.inputs) if (row.name) next[row.name] = "";
      for (const item of p.inputs) {
        if (item.filled_from === "param") {
          const param = meta.parameters.find((x) => `params.${x.name}` === item.binding);
          next[item.name] = param?.default ?? "";
        } else next[item.name] = item.value;
      }
      setValues(next);
    }, setError);
  }, [pipelineId, task.name]);
  const start = async () => {
    setError(null);
    try {
      const params = Object.fromEntries(meta.parameters.map((p) => [p.name, p.default ?? ""]));
      const inputs = Object.fromEntries(Object.entries(values).filter(([name]) => edited.has(name) || plan?.missing.includes(name)));
      const res = await post<{ id: number }>(`/pipelines/${pipelineId}/runs`, { debug_task: task.name, inputs, params });
      setRun(null);
      setRunId(res.id);
    } catch (err) {
      setError(err);
    }
  };
  const finished = run !== null && RUN_TERMINAL.has(run.state);
  usePolling(async () => {
    if (runId === null) return;
    const res = await get<{ result: RunDetail }>(`/runs/${runId}`);
    setRun(res.result);
  }, 1000, runId !== null && !finished, [runId]);
  const ti = run?.tasks.find((x) => x.name === task.name);
  const byName = new Map((plan?.inputs ?? []).map((i) => [i.name, i]));
  return (
    <Modal title={t("debug_title", { name: task.name })} onClose={onClose} wide testId="debug-dialog" footer={
      <>
        {runId !== null && <a className="btn btn-link" href={`/runs/${runId}`} data-testid="debug-run-link">{t("open_run_page")}</a>}
        <button type="button" className="btn btn-default" onClick={onClose}>{t("close")}</button>
        <button type="button" className="btn btn-warning" data-testid="debug-start" disabled={plan === null || (runId !== null && !finished)}
                onClick={start}><i className="fa fa-bug" /> {runId === null ? t("start_debug") : t("debug_again")}</button>
      </>
    }>
      <p className="myapp-muted">{t("debug_help")}</p>
      <ErrorBox error={error} />
      {plan && Object.keys(values).length === 0 && <p className="myapp-muted">{t("no_inputs")}</p>}
      <div className="myapp-grid2">
        {Object.entries(values).map(([name, value]) => {
          const item = byName.get(name);
          const missing = (plan?.missing.includes(name) ?? false) && !edited.has(name);
          const binding = task.inputs.find((r) => r.name === name)?.binding;
          return (
            <div className={"form-group" + (missing ? " has-error" : "")} key={name}>
              <label>{name}</label>
              <input className="form-control input-sm" data-debug-input={name} value={value}
                     onChange={(e) => { setValues({ ...values, [name]: e.target.value }); setEdited(new Set(edited).add(name)); }} />
              <div className={"myapp-debug-source" + (missing ? " missing" : " myapp-muted")} data-debug-source={name}>
                {missing ? t("debug_missing", { binding: binding && binding.kind === "task" ? binding.ref : name })
                         : sourceText(item, plan, edited.has(name), missing)}
              </div>
            </div>
          );
        })}
      </div>
      {runId !== null && (
        <div className="myapp-debug-run" data-testid="debug-run" data-run-id={runId}>
          <div>{t("run")} #{runId}: <StateBadge state={ti?.state ?? run?.state ?? "queued"} />
            {ti?.message && <span className="text-danger"> {ti.message}</span>}</div>
          <LogView runId={runId} task={task.name} tryNumber={ti?.try_number ?? 0} />
        </div>
      )}
    </Modal>
  );
}

export function YamlDialog({ doc, readOnly, onImport, onClose, check }: {
  doc: unknown; readOnly: boolean; onImport: (doc: any) => void; onClose: () => void;
  check?: (doc: any) => { field: string; message: string } | null;   // refuse a document the canvas cannot draw (a cycle)
}) {
  const [text, setText] = useState(() => yaml.dump(doc, { noRefs: true, lineWidth: 120 }));
  const [error, setError] = useState("");
  const apply = () => {
    try {
      const parsed = yaml.load(text);
      if (!parsed || typeof parsed !== "object") throw new Error(t("yaml_not_mapping"));
      const problem = check?.(parsed);
      if (problem) throw new Error(`${problem.field}: ${problem.message}`);
      onImport(parsed);
      onClose();
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
  };
  return (
    <Modal title="YAML" onClose={onClose} wide testId="yaml-dialog" footer={
      <>
        <button type="button" className="btn btn-default" onClick={onClose}>{t("close")}</button>
        {!readOnly && <button type="button" className="btn btn-primary" data-testid="yaml-apply" onClick={apply}>{t("yaml_apply")}</button>}
      </>
    }>
      {error && <div className="alert alert-danger" data-testid="yaml-error">{error}</div>}
      <textarea className="form-control myapp-code" rows={24} spellCheck={false} value={text} readOnly={readOnly}
                data-testid="yaml-text" onChange={(e) => setText(e.target.value)} />
    </Modal>
  );
}
