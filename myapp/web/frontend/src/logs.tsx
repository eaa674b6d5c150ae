// An attempt's log: polled from GET /runs/<id>/logs with an offset while live, then archived.
import { useEffect, useRef, useState } from "react";
import { download, get } from "./api";
import { t } from "./i18n";
import { errorText, usePolling } from "./ui";

interface LogChunk { lines: string[]; offset: number; finished: boolean; try_number: number }

export function LogView({ runId, task, tryNumber }: { runId: number; task: string; tryNumber: number }) {
  const [lines, setLines] = useState<string[]>([]);
  const [finished, setFinished] = useState(false);
  const [error, setError] = useState("");
  const offset = useRef(0);
  const box = useRef<HTMLPreElement>(null);
  const follow = useRef(true);

  useEffect(() => {
    setLines([]);
    setFinished(false);
    setError("");
    offset.current = 0;
  }, [runId, task, tryNumber]);

  usePolling(async () => {
    try {
      const chunk = await get<LogChunk>(`/runs/${runId}/logs`, { task, try: tryNumber, offset: offset.current });
      if (chunk.lines.length) setLines((old) => [...old, ...chunk.lines]);
      offset.current = chunk.offset;
      setError("");
      if (chunk.finished) setFinished(true);
    } catch (err) {
      setError(errorText(err));
    }
  }, 1000, tryNumber > 0 && !finished, [runId, task, tryNumber]);

  useEffect(() => {
    if (box.current && follow.current) box.current.scrollTop = box.current.scrollHeight;
  }, [lines]);

  if (tryNumber < 1) return <div className="myapp-empty">{t("log_not_started")}</div>;
  return (
    <div className="myapp-log" data-testid="log-view">
      <div className="myapp-log-bar">
        <span className={"label " + (finished ? "label-default" : "label-primary")} data-testid="log-status">
          {finished ? t("log_archived") : t("log_live")}
        </span>
        <span className="myapp-muted"> {t("try_n", { n: tryNumber })} · {t("n_lines", { n: lines.length })}</span>
        <button type="button" className="btn btn-default btn-xs pull-right" data-testid="log-download"
                onClick={() => download(`run-${runId}-${task}-try${tryNumber}.log`, lines.join(""))}>
          <i className="fa fa-download" /> {t("download")}
        </button>
      </div>
      {error && <div className="text-danger">{error}</div>}
      <pre ref={box} className="myapp-log-text" data-testid="log-text"
           onScroll={(e) => {
             const el = e.currentTarget;
             follow.current = el.scrollHeight - el.scrollTop - el.clientHeight < 30;
           }}>
        {lines.join("") || (finished ? t("log_empty") : t("log_waiting"))}
      </pre>
    </div>
  );
}
