// A pipeline's runs as a grid, as Airflow's grid view: one column per run (oldest left, newest
// right) headed by the run's state and duration, one row per task; each cell is the task
// instance's state with its try number, linking to the run page. Reads GET /overview/pipelines/<id>/grid.
import { useState } from "react";
import { get } from "../api";
import { t } from "../i18n";
import { Empty, ErrorBox, PageHeader, StateBadge, fmtDuration, fmtTime, stateColor, stateLabel, usePolling } from "../ui";

interface GridRun { id: number; state: string; trigger: string; execution_date: string; debug_task: string | null;
  started_at: string | null; ended_at: string | null }
interface GridCell { run_id: number; task: string; state: string; try_number: number; started_at: string | null; ended_at: string | null }
interface GridData { pipeline: { id: number; name: string }; tasks: string[]; runs: GridRun[]; cells: GridCell[]; total_runs: number }

const PAGE = 25;

function seconds(r: { started_at: string | null; ended_at: string | null }): number {
  if (!r.started_at) return 0;
  return Math.max(0, ((r.ended_at ? new Date(r.ended_at).getTime() : Date.now()) - new Date(r.started_at).getTime()) / 1000);
}

export function GridPage({ pipeline_id }: { pipeline_id: number }) {
  const [data, setData] = useState<GridData | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [before, setBefore] = useState<number[]>([]);  // a stack of pages: the `before` id of each older page
  const cursor = before.length ? before[before.length - 1] : undefined;
  usePolling(async () => {
    try {
      setData(await get<GridData>(`/overview/pipelines/${pipeline_id}/grid`, { limit: PAGE, before: cursor }));
      setError(null);
    } catch (err) {
      setError(err);
    }
  }, 3000, true, [pipeline_id, cursor]);

  if (error && !data) return <ErrorBox error={error} />;
  if (!data) return <div className="myapp-loading">{t("loading")}</div>;
  const cells = new Map(data.cells.map((c) => [`${c.run_id}/${c.task}`, c]));
  const longest = Math.max(1, ...data.runs.map(seconds));
  return (
    <div data-testid="grid-page">
      <PageHeader title={t("grid_title", { name: data.pipeline.name })}>
        <a className="btn btn-default btn-sm" href={`/pipelines/${pipeline_id}/edit`}><i className="fa fa-pencil-alt" /> {t("open_editor")}</a>
        <a className="btn btn-default btn-sm" href={`/runs/?pipeline_id=${pipeline_id}`}><i className="fa fa-tasks" /> {t("runs")}</a>
      </PageHeader>
      <p className="myapp-muted">{t("grid_help")} <span data-testid="grid-total">{t("total_runs", { n: data.total_runs })}</span></p>
      {data.runs.length === 0 ? <Empty>{t("no_runs")}</Empty> : (
        <div className="table-responsive">
          <table className="myapp-grid-table" data-testid="grid-table">
            <thead>
              <tr>
                <th />
                {data.runs.map((r) => (
                  <th key={r.id} className="runhead" title={`#${r.id} ${stateLabel(r.state)} · ${r.execution_date} · ${fmtDuration(r.started_at, r.ended_at)}`}>
                    <a href={`/runs/${r.id}`} className="myapp-grid-runbar" data-run-id={r.id} data-state={r.state}
                       style={{ background: stateColor(r.state), height: `${8 + Math.round(40 * seconds(r) / longest)}px` }} />
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {data.tasks.map((task) => (
                <tr key={task} data-task={task}>
                  <th className="task">{task}</th>
                  {data.runs.map((r) => {
                    const c = cells.get(`${r.id}/${task}`);
                    if (!c) return <td key={r.id}><span className="myapp-grid-cell none" /></td>;
                    return (
                      <td key={r.id}>
                        <a className="myapp-grid-cell" href={`/runs/${r.id}`} data-state={c.state} data-try={c.try_number}
                           style={{ background: stateColor(c.state) }}
                           title={`${task} (${c.try_number}) · ${stateLabel(c.state)} · ${fmtTime(c.started_at)} · ${fmtDuration(c.started_at, c.ended_at)}`}>
                          {c.try_number > 1 ? c.try_number : ""}
                        </a>
                      </td>
                    );
                  })}
                </tr>
              ))}
              <tr>
                <th className="task myapp-muted small">{t("run")}</th>
                {data.runs.map((r) => <td key={r.id} className="small text-center"><a href={`/runs/${r.id}`}>#{r.id}</a></td>)}
              </tr>
            </tbody>
          </table>
        </div>
      )}
      <div className="myapp-legend">
        {["running", "succeeded", "failed", "upstream_failed", "stopped", "queued"].map((s) => <span key={s}><StateBadge state={s} /></span>)}
      </div>
      <div className="myapp-pager">
        <button type="button" className="btn btn-default btn-sm" disabled={data.runs.length < PAGE}
                onClick={() => setBefore([...before, data.runs[0].id])}>‹ {t("older")}</button>{" "}
        <button type="button" className="btn btn-default btn-sm" disabled={before.length === 0}
                onClick={() => setBefore(before.slice(0, -1))}>{t("newer")} ›</button>
      </div>
    </div>
  );
}
