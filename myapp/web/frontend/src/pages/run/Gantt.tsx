// A run's attempts on a time axis (a Gantt chart, as Airflow's run durations view): one row per
// task, one bar per attempt from its start to its end (now while it runs), coloured by its state,
// labelled with its try number and duration. Drawn from GET /runs/<id> (attempts' times).
import { t } from "../../i18n";
import { fmtDuration, fmtTime, stateColor, stateLabel } from "../../ui";
import type { TaskRow } from "./TaskPanel";

function ms(iso: string | null | undefined, fallback: number): number {
  const v = iso ? new Date(iso).getTime() : NaN;
  return isNaN(v) ? fallback : v;
}

export function Gantt({ tasks, onPick }: { tasks: TaskRow[]; onPick: (name: string) => void }) {
  const now = Date.now();
  const attempts = tasks.flatMap((task) => task.attempts.map((a) => ({ task, a })));
  const starts = attempts.map(({ a }) => ms(a.started_at, now));
  const begin = starts.length ? Math.min(...starts) : now;
  const end = Math.max(begin + 1000, ...attempts.map(({ a }) => ms(a.ended_at, now)));
  const span = end - begin;
  const pct = (v: number) => `${(100 * (v - begin)) / span}%`;
  return (
    <div className="myapp-gantt" data-testid="gantt">
      <p className="myapp-muted small">{t("gantt_help")}</p>
      {tasks.map((task) => (
        <div key={task.name} className="myapp-gantt-row" data-task={task.name}>
          <div className="myapp-gantt-name" onClick={() => onPick(task.name)} title={stateLabel(task.state)}>
            {task.try_number > 0 ? `${task.name} (${task.try_number})` : task.name}
          </div>
          <div className="myapp-gantt-track">
            {task.attempts.length === 0 && <span className="myapp-muted small">&nbsp;{t("not_started")}</span>}
            {task.attempts.map((a) => {
              const from = ms(a.started_at, now);
              const to = ms(a.ended_at, now);
              return (
                <div key={a.try_number} className="myapp-gantt-bar" data-try={a.try_number} data-state={a.state}
                     style={{ left: pct(from), width: `${Math.max(0.4, (100 * (to - from)) / span)}%`, background: stateColor(a.state) }}
                     title={`${task.name} (${a.try_number}) · ${stateLabel(a.state)} · ${fmtTime(a.started_at)} → ${fmtTime(a.ended_at)} · ${fmtDuration(a.started_at, a.ended_at)}`}
                     onClick={() => onPick(task.name)}>
                  {fmtDuration(a.started_at, a.ended_at)}
                </div>
              );
            })}
          </div>
        </div>
      ))}
      <div className="myapp-gantt-axis"><span>{fmtTime(new Date(begin).toISOString())}</span>
        <span>{fmtDuration(new Date(begin).toISOString(), new Date(end).toISOString())}</span>
        <span>{fmtTime(new Date(end).toISOString())}</span></div>
    </div>
  );
}
