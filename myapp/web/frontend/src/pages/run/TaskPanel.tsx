// One task of a run: tabs for inputs/outputs, details, logs, container (process/pod), k8s events.
import { ReactNode, useEffect, useState } from "react";
import { t } from "../../i18n";
import { LogView } from "../../logs";
import { StateBadge, Tabs, fmtDuration, fmtTime } from "../../ui";

export interface Attempt {
  try_number: number;
  state: string;
  worker?: string;
  pid: number | null;
  pods: string[];
  exit_code: number | null;
  message: string;
  started_at: string | null;
  ended_at: string | null;
  container: Record<string, unknown>;
  events: any[];
}
export interface TaskRow {
  name: string;
  state: string;
  try_number: number;
  max_tries: number;
  inputs: Record<string, any>;
  outputs: Record<string, any>;
  message: string;
  queued_at: string | null;
  started_at: string | null;
  ended_at: string | null;
  attempts: Attempt[];
}

function valueText(v: any): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "object") {
    if ("value" in v && (v.type === "text" || v.type === undefined)) return String(v.value);
    if ("path" in v) return String(v.path);
    if ("value" in v) return String(v.value);
    return JSON.stringify(v);
  }
  return String(v);
}

function KeyValues({ data, testId }: { data: Record<string, any>; testId: string }) {
  const entries = Object.entries(data ?? {});
  if (!entries.length) return <div className="myapp-muted">{t("none")}</div>;
  return (
    <table className="table table-condensed myapp-kv" data-testid={testId}>
      <tbody>
        {entries.map(([k, v]) => (
          <tr key={k}><th>{k}</th><td><small className="myapp-muted">{typeof v === "object" && v?.type ? v.type : ""}</small></td>
            <td><code className="myapp-value">{valueText(v)}</code></td></tr>
        ))}
      </tbody>
    </table>
  );
}

function Field({ label, children }: { label: string; children: ReactNode }) {
  return <tr><th>{label}</th><td>{children}</td></tr>;
}

export function TaskPanel({ runId, task }: { runId: number; task: TaskRow }) {
  const [tab, setTab] = useState("io");
  const [tryNumber, setTryNumber] = useState(task.try_number);
  useEffect(() => setTryNumber(task.try_number), [task.name, task.try_number]);
  const attempt = task.attempts.find((a) => a.try_number === tryNumber) ?? task.attempts[task.attempts.length - 1];
  const tabs = [
    { id: "io", label: t("tab_io") }, { id: "details", label: t("tab_details") }, { id: "logs", label: t("tab_logs") },
    { id: "container", label: t("tab_container") }, { id: "events", label: t("tab_events") },
  ];
  const trySelect = task.attempts.length > 1 && (
    <select className="form-control input-sm myapp-inline" data-testid="try-select" value={tryNumber}
            onChange={(e) => setTryNumber(Number(e.target.value))}>
      {task.attempts.map((a) => <option key={a.try_number} value={a.try_number}>{t("try_n", { n: a.try_number })} · {a.state}</option>)}
    </select>
  );
  return (
    <div className="myapp-task-panel" data-task={task.name}>
      <h4>{task.name} <StateBadge state={task.state} /> {trySelect}</h4>
      {task.message && <div className="alert alert-warning myapp-small-alert">{task.message}</div>}
      <Tabs tabs={tabs} active={tab} onChange={setTab} />
      <div className="myapp-tab-body" data-testid={`tab-${tab}`}>
        {tab === "io" && (
          <>
            <h5>{t("inputs")}</h5>
            <KeyValues data={task.inputs} testId="task-inputs" />
            <h5>{t("outputs")}</h5>
            <KeyValues data={task.outputs} testId="task-outputs" />
          </>
        )}
        {tab === "details" && (
          <table className="table table-condensed myapp-kv">
            <tbody>
              <Field label={t("state")}><StateBadge state={task.state} /></Field>
              <Field label={t("tries")}>{task.try_number} / {task.max_tries}</Field>
              <Field label={t("queued")}>{fmtTime(task.queued_at)}</Field>
              <Field label={t("started")}>{fmtTime(task.started_at)}</Field>
              <Field label={t("ended")}>{fmtTime(task.ended_at)}</Field>
              <Field label={t("duration")}>{fmtDuration(task.started_at, task.ended_at)}</Field>
              <Field label={t("message")}>{task.message}</Field>
              {task.attempts.map((a) => (
                <Field key={a.try_number} label={t("try_n", { n: a.try_number })}>
                  <StateBadge state={a.state} /> {t("exit_code")}: {a.exit_code ?? "—"} · {fmtTime(a.started_at)} → {fmtTime(a.ended_at)}
                  {a.message && <div className="text-danger small">{a.message}</div>}
                </Field>
              ))}
            </tbody>
          </table>
        )}
        {tab === "logs" && <LogView runId={runId} task={task.name} tryNumber={attempt?.try_number ?? 0} />}
        {tab === "container" && (
          attempt ? (
            <table className="table table-condensed myapp-kv" data-testid="container-info">
              <tbody>
                <Field label={t("worker")}>{attempt.worker ?? ""}</Field>
                <Field label="PID">{attempt.pid ?? ""}</Field>
                <Field label={t("pods")}>{(attempt.pods ?? []).join(", ") || "—"}</Field>
                <Field label={t("exit_code")}>{attempt.exit_code ?? "—"}</Field>
                {Object.entries(attempt.container ?? {}).map(([k, v]) => (
                  <Field key={k} label={k}><code className="myapp-value">{typeof v === "object" ? JSON.stringify(v, null, 1) : String(v)}</code></Field>
                ))}
              </tbody>
            </table>
          ) : <div className="myapp-empty">{t("log_not_started")}</div>
        )}
        {tab === "events" && (
          attempt && attempt.events?.length ? (
            <table className="table table-condensed" data-testid="k8s-events">
              <thead><tr><th>{t("time")}</th><th>{t("type")}</th><th>{t("reason")}</th><th>{t("object")}</th><th>{t("message")}</th></tr></thead>
              <tbody>
                {attempt.events.map((ev: any, i: number) => (
                  <tr key={i}>
                    <td>{fmtTime(ev.last_timestamp ?? ev.lastTimestamp ?? ev.event_time ?? ev.time ?? ev.first_timestamp)}</td>
                    <td>{ev.type ?? ""}</td><td>{ev.reason ?? ""}</td>
                    <td>{ev.object ?? ev.involved_object?.name ?? ev.involvedObject?.name ?? ""}</td>
                    <td>{ev.message ?? (typeof ev === "string" ? ev : "")}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : <div className="myapp-empty">{t("no_events")}</div>
        )}
      </div>
    </div>
  );
}
