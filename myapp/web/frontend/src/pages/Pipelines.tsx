// The pipelines list, as Airflow's DAGs page: a strip of the last runs' states, the schedule in
// words with its next run, a pause/enable switch (with the backfill guard), a Run button, owner
// and project, server-side search, sort and paging with the total. Reads GET /overview/pipelines.
import { useState } from "react";
import { api, can, download, get, post } from "../api";
import { t } from "../i18n";
import { BackfillDialog, BackfillInfo, backfillOf } from "../backfill";
import { Empty, ErrorBox, Modal, PageHeader, StateBadge, errorText, fmtTime, stateColor, stateLabel, toast, usePolling } from "../ui";

interface StripRun { id: number; state: string; trigger: string; execution_date: string; started_at: string | null; ended_at: string | null }
interface PipelineRow {
  id: number; name: string; project: string; owner: string; description: string; version: number | null;
  schedule: { type: string; cron: string | null; timezone: string; enabled: boolean; text: string; next_fire_at: string | null };
  schedule_error: string | null; updated_at: string; runs: StripRun[]; last_run: StripRun | null;
}

const PAGE = 25;
const SORTS = ["name", "-name", "project", "next_fire", "-last_run"] as const;

function ImportDialog({ onClose }: { onClose: () => void }) {
  const [text, setText] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [backfill, setBackfill] = useState<BackfillInfo | null>(null);
  const save = async (confirm = false) => {
    try {
      const res = await api<{ id: number; version: number }>("POST", "/pipelines/",
        { text, query: confirm ? { confirm_backfill: 1 } : undefined });
      window.location.href = `/pipelines/${res.id}/edit`;
    } catch (err) {
      const info = backfillOf(err);
      if (info) setBackfill(info); else setError(err);
    }
  };
  return (
    <Modal title={t("import_yaml")} onClose={onClose} wide testId="import-dialog" footer={
      <>
        <button type="button" className="btn btn-default" onClick={onClose}>{t("cancel")}</button>
        <button type="button" className="btn btn-primary" data-testid="import-save" onClick={() => save()}>{t("import")}</button>
      </>
    }>
      <ErrorBox error={error} />
      <textarea className="form-control myapp-code" rows={20} spellCheck={false} value={text} placeholder="name: my-pipeline&#10;tasks: ..."
                onChange={(e) => setText(e.target.value)} data-testid="import-text" />
      <input type="file" accept=".yaml,.yml" className="myapp-file" onChange={async (e) => {
        const file = e.target.files?.[0];
        if (file) setText(await file.text());
      }} />
      {backfill && <BackfillDialog info={backfill} onClose={() => setBackfill(null)} onConfirm={() => save(true)} />}
    </Modal>
  );
}

/** The newest runs, oldest left and newest right, each a coloured block linking to its run. */
export function RunStrip({ runs, size = 10 }: { runs: StripRun[]; size?: number }) {
  const blocks = [...runs].reverse();
  return (
    <span className="myapp-strip" data-testid="run-strip">
      {Array.from({ length: Math.max(0, size - blocks.length) }, (_, i) => <span key={`e${i}`} className="empty" />)}
      {blocks.map((r) => (
        <a key={r.id} href={`/runs/${r.id}`} data-state={r.state} style={{ background: stateColor(r.state) }}
           title={`#${r.id} ${stateLabel(r.state)} · ${t(`trigger_${r.trigger}` as any)} · ${r.execution_date}`} />
      ))}
    </span>
  );
}

export function PipelinesPage() {
  const [rows, setRows] = useState<PipelineRow[] | null>(null);
  const [total, setTotal] = useState(0);
  const [error, setError] = useState<unknown>(null);
  const [query, setQuery] = useState("");
  const [sort, setSort] = useState<string>("name");
  const [offset, setOffset] = useState(0);
  const [importing, setImporting] = useState(false);
  const [backfill, setBackfill] = useState<{ row: PipelineRow; info: BackfillInfo } | null>(null);
  const [tick, setTick] = useState(0);
  const canWrite = can("Pipelines", "write");
  const canRun = canWrite;  // starting a run is a write on the pipeline (POST /pipelines/<id>/runs)

  usePolling(async () => {
    try {
      const res = await get<{ result: PipelineRow[]; total: number }>("/overview/pipelines",
        { q: query, sort, limit: PAGE, offset, strip: 10 });
      setRows(res.result);
      setTotal(res.total);
      setError(null);
    } catch (err) {
      setError(err);
    }
  }, 5000, true, [query, sort, offset, tick]);

  const exportYaml = async (row: PipelineRow) => {
    try {
      download(`${row.name}.yaml`, await api<string>("GET", `/pipelines/${row.id}/export`, { raw: true }), "application/yaml");
    } catch (err) {
      toast(String(err), "danger");
    }
  };
  const toggle = async (row: PipelineRow, confirm = false) => {
    const enabled = !row.schedule.enabled;
    try {
      const res = await post<{ version: number }>(`/overview/pipelines/${row.id}/schedule`, { enabled, confirm });
      toast(t(enabled ? "schedule_enabled_toast" : "schedule_disabled_toast", { name: row.name, version: res.version }), "success");
      setBackfill(null);
    } catch (err) {
      const info = backfillOf(err);
      if (info) setBackfill({ row, info }); else toast(errorText(err), "danger");
    }
    setTick((x) => x + 1);
  };
  const runNow = async (row: PipelineRow) => {
    try {
      const res = await post<{ id: number }>(`/pipelines/${row.id}/runs`, { params: {} });
      toast(t("run_started", { id: res.id }), "success");
      setTick((x) => x + 1);
    } catch (err) {
      toast(errorText(err), "danger");
    }
  };

  return (
    <div data-testid="pipelines-page">
      <PageHeader title={t("pipelines")}>
        <input className="form-control input-sm myapp-inline" type="search" placeholder={t("search")} value={query}
               data-testid="pipeline-search" onChange={(e) => { setQuery(e.target.value); setOffset(0); }} />
        <select className="form-control input-sm myapp-inline" value={sort} data-testid="pipeline-sort" title={t("sort")}
                onChange={(e) => { setSort(e.target.value); setOffset(0); }}>
          {SORTS.map((s) => <option key={s} value={s}>{t(`sort_${s}` as any)}</option>)}
        </select>
        {canWrite && <button type="button" className="btn btn-default btn-sm" onClick={() => setImporting(true)}>
          <i className="fa fa-file-import" /> {t("import_yaml")}</button>}
        {canWrite && <a className="btn btn-primary btn-sm" href="/pipelines/new" data-testid="new-pipeline">
          <i className="fa fa-plus" /> {t("new_pipeline")}</a>}
      </PageHeader>
      <ErrorBox error={error} />
      {rows && rows.length === 0 && <Empty>{t("no_pipelines")}</Empty>}
      {rows && rows.length > 0 && (
        <table className="table table-hover table-condensed myapp-table" data-testid="pipelines-table">
          <thead><tr><th /><th>{t("name")}</th><th>{t("owner_col")}</th><th>{t("last_runs")}</th>
            <th>{t("schedule")}</th><th>{t("next_run")}</th><th>{t("version")}</th><th /></tr></thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.id} data-pipeline={r.name}>
                <td>
                  {r.schedule.type === "crontab" && (
                    <button type="button" className={"myapp-switch" + (r.schedule.enabled ? " on" : "")} data-testid="schedule-toggle"
                            data-enabled={String(r.schedule.enabled)} disabled={!canWrite}
                            title={r.schedule.enabled ? t("schedule_on") : t("schedule_off")} onClick={() => toggle(r)} />
                  )}
                </td>
                <td>
                  <a href={`/pipelines/${r.id}/edit`}><b>{r.name}</b></a>
                  <div className="myapp-muted small">{r.project}{r.description ? ` · ${r.description}` : ""}</div>
                </td>
                <td>{r.owner}</td>
                <td><RunStrip runs={r.runs} />
                  {r.last_run && <div className="small"><StateBadge state={r.last_run.state} /> <span className="myapp-muted">{fmtTime(r.last_run.started_at)}</span></div>}
                </td>
                <td>
                  {r.schedule.type === "crontab"
                    ? <span><code>{r.schedule.cron}</code> <span className="myapp-muted small">{r.schedule.timezone}</span>
                        <div className="myapp-sched-text" data-testid="schedule-text">{r.schedule.text}{r.schedule.enabled ? "" : ` (${t("disabled")})`}</div></span>
                    : <span className="myapp-muted">{t("schedule_once")}</span>}
                  {r.schedule_error && <div className="text-danger small" title={r.schedule_error}><i className="fa fa-exclamation-triangle" /> {r.schedule_error}</div>}
                </td>
                <td data-testid="next-run">{fmtTime(r.schedule.next_fire_at)}</td>
                <td><a href={`/pipelines/${r.id}/versions`}>v{r.version}</a></td>
                <td className="text-right myapp-nowrap">
                  {canRun && <button type="button" className="btn btn-xs btn-success" data-testid="run-now" title={t("run_now")}
                                     onClick={() => runNow(r)}><i className="fa fa-play" /> {t("run")}</button>}{" "}
                  <a className="btn btn-xs btn-primary" href={`/pipelines/${r.id}/edit`}><i className="fa fa-pencil-alt" /> {canWrite ? t("edit") : t("view")}</a>{" "}
                  <a className="btn btn-xs btn-default" href={`/pipelines/${r.id}/grid`}><i className="fa fa-th" /> {t("grid")}</a>{" "}
                  <a className="btn btn-xs btn-default" href={`/runs/?pipeline_id=${r.id}`}><i className="fa fa-tasks" /> {t("runs")}</a>{" "}
                  <a className="btn btn-xs btn-default" href={`/schedules/records?pipeline_id=${r.id}`}><i className="fa fa-clock" /> {t("schedule_records")}</a>{" "}
                  <button type="button" className="btn btn-xs btn-default" onClick={() => exportYaml(r)}><i className="fa fa-download" /> YAML</button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <div className="myapp-pager">
        <span className="myapp-total" data-testid="pipelines-total">{t("n_of_m", { n: rows?.length ?? 0, m: total })}</span>{" "}
        <button type="button" className="btn btn-default btn-sm" disabled={offset === 0}
                onClick={() => setOffset(Math.max(0, offset - PAGE))}>‹ {t("previous")}</button>{" "}
        <button type="button" className="btn btn-default btn-sm" disabled={offset + PAGE >= total}
                onClick={() => setOffset(offset + PAGE)}>{t("next")} ›</button>
      </div>
      {importing && <ImportDialog onClose={() => setImporting(false)} />}
      {backfill && <BackfillDialog info={backfill.info} onClose={() => setBackfill(null)}
                                   onConfirm={() => toggle(backfill.row, true)} />}
    </div>
  );
}
