// Schedule records (cube's 定时调度记录): one row per materialized cron instant with its run, the
// skipped spans, and a preview of the coming fire times of one pipeline.
// Reads GET /schedules/records?pipeline_id= and GET /schedules/preview/<id>.
import { useState } from "react";
import { ApiError, get, isMissingEndpoint } from "../api";
import { t } from "../i18n";
import { Empty, ErrorBox, PageHeader, StateBadge, fmtTime, usePolling } from "../ui";
import { usePipelineNames } from "./Runs";

interface RecordRow {
  id: number; pipeline_id: number; pipeline: string; timezone: string; execution_date: string; execution_local?: string;
  status: string; run_id: number | null; run_state: string | null; message: string; created_at: string;
}
interface Preview {
  summary: string; schedule_error: string | null;
  fire_times: { execution_date: string; local: string; instant: string; action: string; reason: string }[];
}

export function SchedulesPage({ pipeline_id }: { pipeline_id: number | null }) {
  const pipelines = usePipelineNames();
  const [pid, setPid] = useState<string>(pipeline_id ? String(pipeline_id) : "");
  const [records, setRecords] = useState<RecordRow[] | null>(null);
  const [total, setTotal] = useState<number | null>(null);
  const [since, setSince] = useState("");
  const [until, setUntil] = useState("");
  const [skipped, setSkipped] = useState<Record<string, any>[]>([]);
  const [preview, setPreview] = useState<Preview | null>(null);
  const [previewNote, setPreviewNote] = useState("");
  const [missing, setMissing] = useState(false);
  const [error, setError] = useState<unknown>(null);

  usePolling(async () => {
    try {
      const res = await get<{ result: RecordRow[]; total?: number; skipped?: Record<string, any>[] }>(
        "/schedules/records", { pipeline_id: pid, since, until });
      setRecords(res.result);
      setTotal(res.total ?? null);
      setSkipped(res.skipped ?? []);
      setError(null);
    } catch (err) {
      if (isMissingEndpoint(err)) setMissing(true); else setError(err);
    }
    if (!pid) { setPreview(null); setPreviewNote(""); return; }
    try {
      setPreview(await get<Preview>(`/schedules/preview/${pid}`, { n: 10 }));
      setPreviewNote("");
    } catch (err) {
      setPreview(null);
      setPreviewNote(err instanceof ApiError ? err.message : String(err));
    }
  }, 10000, !missing, [pid, since, until]);

  return (
    <div data-testid="schedules-page">
      <PageHeader title={t("schedule_records")}>
        <select className="form-control input-sm myapp-inline" name="pipeline_id" value={pid}
                onChange={(e) => {
                  setPid(e.target.value);
                  window.history.replaceState(null, "", `/schedules/records${e.target.value ? "?pipeline_id=" + e.target.value : ""}`);
                }}>
          <option value="">{t("all_pipelines")}</option>
          {pipelines.map((p) => <option key={p.id} value={p.id}>{p.project}/{p.name}</option>)}
        </select>
        <label className="myapp-muted small">{t("date_filter")}</label>
        <input type="date" className="form-control input-sm myapp-inline" name="since" title={t("since")} value={since}
               onChange={(e) => setSince(e.target.value)} />
        <span className="myapp-muted">–</span>
        <input type="date" className="form-control input-sm myapp-inline" name="until" title={t("until")} value={until}
               onChange={(e) => setUntil(e.target.value)} />
      </PageHeader>
      <p className="myapp-muted">{t("schedule_records_help")}</p>
      {missing && <div className="alert alert-info" data-testid="schedules-missing">{t("endpoint_missing", { path: "/api/v1/schedules/records" })}</div>}
      <ErrorBox error={error} />
      {preview && (
        <div className="panel panel-default" data-testid="preview">
          <div className="panel-heading"><b>{t("coming_fire_times")}</b> <span className="myapp-muted small">{preview.summary}</span></div>
          {preview.schedule_error && <div className="alert alert-danger myapp-small-alert">{preview.schedule_error}</div>}
          <table className="table table-condensed myapp-table" data-testid="preview-table">
            <thead><tr><th>{t("execution_date")}</th><th>{t("action")}</th><th>{t("reason")}</th></tr></thead>
            <tbody>
              {preview.fire_times.map((f) => (
                <tr key={f.instant}><td>{f.local || f.execution_date}</td><td><StateBadge state={f.action} /></td><td>{f.reason}</td></tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {previewNote && <div className="alert alert-info myapp-small-alert" data-testid="preview-note">{previewNote}</div>}
      {records && records.length === 0 && <Empty>{t("no_records")}</Empty>}
      {records && total !== null && <div className="myapp-total" data-testid="records-total">{t("n_of_m", { n: records.length, m: total })}</div>}
      {records && records.length > 0 && (
        <table className="table table-condensed table-hover myapp-table" data-testid="records-table">
          <thead><tr><th>ID</th><th>{t("pipeline")}</th><th>{t("execution_date")}</th><th>{t("status")}</th>
            <th>{t("run")}</th><th>{t("message")}</th><th>{t("created")}</th></tr></thead>
          <tbody>
            {records.map((r) => (
              <tr key={r.id} data-status={r.status}>
                <td>{r.id}</td>
                <td><a href={`/pipelines/${r.pipeline_id}/edit`}>{r.pipeline}</a></td>
                <td>{r.execution_local || r.execution_date} <small className="myapp-muted">{r.timezone}</small></td>
                <td><StateBadge state={r.status} /></td>
                <td>{r.run_id ? <><a href={`/runs/${r.run_id}`}>#{r.run_id}</a> <StateBadge state={r.run_state} /></> : "—"}</td>
                <td>{r.message}</td>
                <td>{fmtTime(r.created_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {skipped.length > 0 && (
        <>
          <h4>{t("skipped_spans")}</h4>
          <ul data-testid="skipped">
            {skipped.map((s, i) => <li key={i}>{s.text ?? `${s.pipeline}: ${s.count} (${s.first} … ${s.last})`}</li>)}
          </ul>
        </>
      )}
    </div>
  );
}
