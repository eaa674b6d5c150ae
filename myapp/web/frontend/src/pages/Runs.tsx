// The runs list: filters (pipeline, state, trigger), paging, and stop/retry/copy per row.
import { useEffect, useState } from "react";
import { can, get } from "../api";
import { t } from "../i18n";
import { Empty, ErrorBox, PageHeader, StateBadge, fmtDuration, fmtTime, usePolling } from "../ui";
import { CopyDialog, RunButtons, RunRow } from "./run/RunActions";

const PAGE = 25;
const STATES = ["queued", "running", "succeeded", "failed", "stopped"];
const TRIGGERS = ["manual", "cron", "debug"];

export function usePipelineNames(): { id: number; name: string; project: string }[] {
  const [list, setList] = useState<{ id: number; name: string; project: string }[]>([]);
  useEffect(() => { get<{ result: any[] }>("/pipelines/").then((r) => setList(r.result), () => setList([])); }, []);
  return list;
}

function readFilters(initial: number | null) {
  const q = new URLSearchParams(window.location.search);
  return {
    pipeline_id: q.get("pipeline_id") ?? (initial ? String(initial) : ""),
    state: q.get("state") ?? "",
    trigger: q.get("trigger") ?? "",
    since: q.get("since") ?? "",
    until: q.get("until") ?? "",
    offset: Number(q.get("offset") ?? 0),
  };
}

export function RunsPage({ pipeline_id }: { pipeline_id: number | null }) {
  const pipelines = usePipelineNames();
  const [filters, setFilters] = useState(() => readFilters(pipeline_id));
  const [rows, setRows] = useState<RunRow[] | null>(null);
  const [total, setTotal] = useState<number | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [copying, setCopying] = useState<RunRow | null>(null);
  const canWrite = can("Runs", "write");

  const set = (patch: Partial<typeof filters>) => {
    const next = { ...filters, offset: 0, ...patch };
    setFilters(next);
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(next)) if (v !== "" && v !== 0) q.set(k, String(v));
    window.history.replaceState(null, "", `/runs/${q.toString() ? "?" + q : ""}`);
  };
  const load = async () => {
    try {
      const res = await get<{ result: RunRow[]; total: number | null }>("/runs/", { ...filters, limit: PAGE });
      setRows(res.result);
      setTotal(res.total);
      setError(null);
    } catch (err) {
      setError(err);
    }
  };
  usePolling(load, 3000, true, [filters]);

  return (
    <div data-testid="runs-page">
      <PageHeader title={t("runs")} />
      <form className="form-inline myapp-filters" onSubmit={(e) => e.preventDefault()}>
        <select className="form-control input-sm" name="pipeline_id" value={filters.pipeline_id}
                onChange={(e) => set({ pipeline_id: e.target.value })}>
          <option value="">{t("all_pipelines")}</option>
          {pipelines.map((p) => <option key={p.id} value={p.id}>{p.project}/{p.name}</option>)}
        </select>{" "}
        <select className="form-control input-sm" name="state" value={filters.state} onChange={(e) => set({ state: e.target.value })}>
          <option value="">{t("all_states")}</option>
          {STATES.map((s) => <option key={s} value={s}>{t(`state_${s}` as any)}</option>)}
        </select>{" "}
        <select className="form-control input-sm" name="trigger" value={filters.trigger} onChange={(e) => set({ trigger: e.target.value })}>
          <option value="">{t("all_triggers")}</option>
          {TRIGGERS.map((s) => <option key={s} value={s}>{t(`trigger_${s}` as any)}</option>)}
        </select>{" "}
        <label className="myapp-muted small">{t("date_filter")}</label>{" "}
        <input type="date" className="form-control input-sm" name="since" title={t("since")} value={filters.since}
               onChange={(e) => set({ since: e.target.value })} />{" "}
        <span className="myapp-muted">–</span>{" "}
        <input type="date" className="form-control input-sm" name="until" title={t("until")} value={filters.until}
               onChange={(e) => set({ until: e.target.value })} />
      </form>
      <ErrorBox error={error} />
      {rows && rows.length === 0 && <Empty>{t("no_runs")}</Empty>}
      {rows && rows.length > 0 && (
        <table className="table table-hover table-condensed myapp-table" data-testid="runs-table">
          <thead><tr>
            <th>ID</th><th>{t("pipeline")}</th><th>{t("version")}</th><th>{t("trigger")}</th><th>{t("state")}</th>
            <th>{t("execution_date")}</th><th>{t("started")}</th><th>{t("duration")}</th><th>{t("runner")}</th><th />
          </tr></thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.id} data-run-id={r.id} data-state={r.state}>
                <td><a href={`/runs/${r.id}`}>#{r.id}</a></td>
                <td><a href={`/pipelines/${r.pipeline_id}/edit`}>{r.pipeline}</a></td>
                <td>{r.version}</td>
                <td>{t(`trigger_${r.trigger}` as any)}{r.debug_task ? ` (${r.debug_task})` : ""}</td>
                <td><StateBadge state={r.state} /></td>
                <td>{fmtTime(r.execution_instant ?? r.execution_date)}</td>
                <td>{fmtTime(r.started_at)}</td>
                <td>{fmtDuration(r.started_at, r.ended_at)}</td>
                <td>{r.runner}</td>
                <td className="text-right">
                  <a className="btn btn-xs btn-default" href={`/runs/${r.id}`}><i className="fa fa-eye" /> {t("view")}</a>{" "}
                  <RunButtons run={r} canWrite={canWrite} onChanged={load} onCopy={() => setCopying(r)} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <div className="myapp-pager">
        {rows && total !== null && <span className="myapp-total" data-testid="runs-total">
          {t("n_of_m", { n: rows.length ? `${filters.offset + 1}–${filters.offset + rows.length}` : 0, m: total })}</span>}{" "}
        <button type="button" className="btn btn-default btn-sm" disabled={filters.offset === 0}
                onClick={() => set({ offset: Math.max(0, filters.offset - PAGE) })}>‹ {t("previous")}</button>{" "}
        <button type="button" className="btn btn-default btn-sm" disabled={!rows || rows.length < PAGE || (total !== null && filters.offset + PAGE >= total)}
                onClick={() => set({ offset: filters.offset + PAGE })}>{t("next")} ›</button>
      </div>
      {copying && <CopyDialog run={copying} onClose={() => setCopying(null)} />}
    </div>
  );
}
