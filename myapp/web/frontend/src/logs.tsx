// An attempt's log: polled from GET /runs/<id>/logs with an offset while live, then archived.
// Each line shows the time it was written (stored with the line, never re-stamped here); stderr
// lines are marked red, myapp's own lines grey; a search box filters and highlights lines.
import { ReactNode, useEffect, useMemo, useRef, useState } from "react";
import { download, get } from "./api";
import { t } from "./i18n";
import { errorText, fmtTime, usePolling } from "./ui";

export interface LogEntry { at: string | null; stream: "out" | "err" | "sys"; text: string }
interface LogChunk { lines: string[]; entries?: LogEntry[]; offset: number; finished: boolean; try_number: number }

function stored(e: LogEntry): string {
  return e.at ? `${e.at} ${e.stream} ${e.text}` : e.text;
}

function highlight(text: string, needle: string): ReactNode {
  if (!needle) return text;
  const out: ReactNode[] = [];
  const lower = text.toLowerCase();
  let from = 0;
  for (let i = lower.indexOf(needle); i >= 0; i = lower.indexOf(needle, from)) {
    out.push(text.slice(from, i), <mark key={i}>{text.slice(i, i + needle.length)}</mark>);
    from = i + needle.length;
  }
  out.push(text.slice(from));
  return out;
}

export function LogView({ runId, task, tryNumber }: { runId: number; task: string; tryNumber: number }) {
  const [entries, setEntries] = useState<LogEntry[]>([]);
  const [finished, setFinished] = useState(false);
  const [error, setError] = useState("");
  const [query, setQuery] = useState("");
  const offset = useRef(0);
  const box = useRef<HTMLDivElement>(null);
  const follow = useRef(true);

  useEffect(() => {
    setEntries([]);
    setFinished(false);
    setError("");
    offset.current = 0;
  }, [runId, task, tryNumber]);

  usePolling(async () => {
    try {
      const chunk = await get<LogChunk>(`/runs/${runId}/logs`, { task, try: tryNumber, offset: offset.current });
      const got = chunk.entries ?? chunk.lines.map((text) => ({ at: null, stream: "out" as const, text }));
      if (got.length) setEntries((old) => [...old, ...got]);
      offset.current = chunk.offset;
      setError("");
      if (chunk.finished) setFinished(true);
    } catch (err) {
      setError(errorText(err));
    }
  }, 1000, tryNumber > 0 && !finished, [runId, task, tryNumber]);

  const needle = query.trim().toLowerCase();
  const shown = useMemo(() => (needle ? entries.filter((e) => e.text.toLowerCase().includes(needle)) : entries),
    [entries, needle]);

  useEffect(() => {
    if (box.current && follow.current && !needle) box.current.scrollTop = box.current.scrollHeight;
  }, [entries, needle]);

  if (tryNumber < 1) return <div className="myapp-empty">{t("log_not_started")}</div>;
  return (
    <div className="myapp-log" data-testid="log-view">
      <div className="myapp-log-bar">
        <span className={"label " + (finished ? "label-default" : "label-primary")} data-testid="log-status">
          {finished ? t("log_archived") : t("log_live")}
        </span>
        <span className="myapp-muted"> {t("try_n", { n: tryNumber })} · {t("n_lines", { n: entries.length })}</span>
        {needle && <span className="myapp-muted" data-testid="log-matches"> · {t("n_matches", { n: shown.length })}</span>}
        <span className="pull-right">
          <input type="search" className="form-control input-sm myapp-inline myapp-log-search" placeholder={t("log_search")}
                 value={query} onChange={(e) => setQuery(e.target.value)} data-testid="log-search" />{" "}
          <button type="button" className="btn btn-default btn-xs" data-testid="log-download"
                  onClick={() => download(`run-${runId}-${task}-try${tryNumber}.log`, entries.map(stored).join(""))}>
            <i className="fa fa-download" /> {t("download")}
          </button>
        </span>
      </div>
      {error && <div className="text-danger">{error}</div>}
      <div ref={box} className="myapp-log-text" data-testid="log-text"
           onScroll={(e) => {
             const el = e.currentTarget;
             follow.current = el.scrollHeight - el.scrollTop - el.clientHeight < 30;
           }}>
        {entries.length === 0 && <span className="myapp-muted">{finished ? t("log_empty") : t("log_waiting")}</span>}
        {shown.map((e, i) => (
          <div key={i} className={"myapp-log-line " + e.stream} data-stream={e.stream}>
            <span className="myapp-log-time">{e.at ? fmtTime(e.at, { ms: true }) : ""}</span>
            {e.stream === "err" && <span className="myapp-log-mark">{t("stderr")}</span>}
            {e.stream === "sys" && <span className="myapp-log-mark sys">{t("myapp_line")}</span>}
            <span className="myapp-log-body">{highlight(e.text.replace(/\n$/, ""), needle)}</span>
          </div>
        ))}
      </div>
    </div>
  );
}
