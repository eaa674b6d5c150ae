// Small shared pieces of the pages: state colours, badges, dialogs, errors, toasts, polling.
import { ReactNode, useEffect, useRef, useState } from "react";
import { ApiError, currentMe } from "./api";
import { t, Key } from "./i18n";

// Run page colours (reference manual): blue running, green succeeded, red failed, grey waiting.
export const STATE_COLORS: Record<string, string> = {
  running: "#1e88e5",
  succeeded: "#43a047",
  failed: "#e53935",
  upstream_failed: "#ef6c00",
  stopped: "#6d4c41",
  skipped: "#bdbdbd",
  pending: "#9e9e9e",
  queued: "#9e9e9e",
  creating: "#90caf9",
  up_for_retry: "#9e9e9e",
  waiting: "#9e9e9e",
  launched: "#1e88e5",
  expired: "#bdbdbd",
  published: "#43a047",
  pending_review: "#f9a825",
  rejected: "#e53935",
  draft: "#9e9e9e",
};
export const RUN_TERMINAL = new Set(["succeeded", "failed", "stopped"]);

export function stateColor(state: string | null | undefined): string {
  return STATE_COLORS[state ?? ""] ?? "#9e9e9e";
}

export function stateLabel(state: string | null | undefined): string {
  const key = `state_${state}` as Key;
  const text = t(key);
  return text === key ? String(state ?? "") : text;
}

export function StateBadge({ state }: { state: string | null | undefined }) {
  return (
    <span className="myapp-badge" data-state={state ?? ""} style={{ background: stateColor(state) }}>
      {stateLabel(state)}
    </span>
  );
}

/** Format an instant as `2026-12-06 15:40:01 UTC` (`... UTC+08:00` in another zone): the CLI's format,
 *  in the server's time zone (`/me`'s timezone). */
export function fmtTime(iso: string | null | undefined, opts: { ms?: boolean } = {}): string {
  if (!iso) return "";
  const d = new Date(iso);
  if (isNaN(d.getTime())) return String(iso);
  const tz = currentMe()?.timezone || "UTC";
  try {
    const parts = new Intl.DateTimeFormat("en-CA", {
      timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
      second: "2-digit", hourCycle: "h23", timeZoneName: "longOffset",
    }).formatToParts(d);
    const part = (type: string) => parts.find((p) => p.type === type)?.value ?? "";
    const offset = part("timeZoneName").replace("GMT", "") || "+00:00";
    const zone = tz === "UTC" || tz === "Etc/UTC" ? "UTC" : `UTC${offset}`;
    const ms = opts.ms ? "." + String(d.getUTCMilliseconds()).padStart(3, "0") : "";
    return `${part("year")}-${part("month")}-${part("day")} ${part("hour")}:${part("minute")}:${part("second")}${ms} ${zone}`;
  } catch {
    return d.toISOString();
  }
}

export function fmtDuration(start: string | null | undefined, end: string | null | undefined): string {
  if (!start) return "";
  const ms = (end ? new Date(end).getTime() : Date.now()) - new Date(start).getTime();
  if (!(ms >= 0)) return "";
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m ${s % 60}s` : `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

export function ErrorBox({ error, onPick }: { error: unknown; onPick?: (field: string) => void }) {
  if (!error) return null;
  const err = error as ApiError;
  const message = err instanceof Error ? err.message : String(error);
  const errors = err instanceof ApiError ? err.errors : [];
  return (
    <div className="alert alert-danger myapp-errors" role="alert">
      <strong>{message}</strong>
      {errors.length > 0 && (
        <ul>
          {errors.map((e, i) => (
            <li key={i} className={onPick ? "myapp-link" : ""} onClick={() => onPick?.(e.field)}>
              <code>{e.field}</code>: {e.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

export function Modal(props: {
  title: ReactNode; onClose: () => void; children: ReactNode; footer?: ReactNode; wide?: boolean; testId?: string;
}) {
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => { if (e.key === "Escape") props.onClose(); };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [props.onClose]);
  return (
    <div className="myapp-modal-backdrop" onMouseDown={(e) => { if (e.target === e.currentTarget) props.onClose(); }}>
      <div className={"myapp-modal" + (props.wide ? " wide" : "")} role="dialog" data-testid={props.testId}>
        <div className="myapp-modal-head">
          <h4>{props.title}</h4>
          <button type="button" className="close" aria-label={t("close")} onClick={props.onClose}>×</button>
        </div>
        <div className="myapp-modal-body">{props.children}</div>
        {props.footer && <div className="myapp-modal-foot">{props.footer}</div>}
      </div>
    </div>
  );
}

export function Tabs(props: { tabs: { id: string; label: string }[]; active: string; onChange: (id: string) => void }) {
  return (
    <ul className="nav nav-tabs myapp-tabs" role="tablist">
      {props.tabs.map((tab) => (
        <li key={tab.id} className={tab.id === props.active ? "active" : ""} role="presentation">
          <a href="#" role="tab" data-tab={tab.id} onClick={(e) => { e.preventDefault(); props.onChange(tab.id); }}>
            {tab.label}
          </a>
        </li>
      ))}
    </ul>
  );
}

type Toast = { id: number; text: string; kind: "info" | "success" | "danger" };
const TOAST_EVENT = "myapp-toast";
let toastSeq = 0;

export function toast(text: string, kind: Toast["kind"] = "info"): void {
  window.dispatchEvent(new CustomEvent(TOAST_EVENT, { detail: { id: ++toastSeq, text, kind } }));
}

export function Toasts() {
  const [items, setItems] = useState<Toast[]>([]);
  useEffect(() => {
    const on = (e: Event) => {
      const item = (e as CustomEvent<Toast>).detail;
      setItems((list) => [...list, item]);
      setTimeout(() => setItems((list) => list.filter((x) => x.id !== item.id)), item.kind === "danger" ? 8000 : 4000);
    };
    window.addEventListener(TOAST_EVENT, on);
    return () => window.removeEventListener(TOAST_EVENT, on);
  }, []);
  return (
    <div className="myapp-toasts">
      {items.map((item) => (
        <div key={item.id} className={`alert alert-${item.kind} myapp-toast`} role="status">{item.text}</div>
      ))}
    </div>
  );
}

/** Call `fn` now and every `ms` milliseconds while `active`; the latest `fn` is always used. */
export function usePolling(fn: () => Promise<unknown> | void, ms: number, active = true, deps: unknown[] = []): void {
  const saved = useRef(fn);
  saved.current = fn;
  useEffect(() => {
    if (!active) return;
    let stopped = false;
    let timer: number | undefined;
    const tick = async () => {
      try { await saved.current(); } catch { /* shown by the caller */ }
      if (!stopped) timer = window.setTimeout(tick, ms);
    };
    tick();
    return () => { stopped = true; window.clearTimeout(timer); };
  }, [ms, active, ...deps]);
}

export function errorText(err: unknown): string {
  if (err instanceof ApiError) {
    const first = err.errors[0];
    return first ? `${err.message} (${first.field})` : err.message;
  }
  return err instanceof Error ? err.message : String(err);
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="myapp-empty">{children}</div>;
}

export function PageHeader({ title, children }: { title: ReactNode; children?: ReactNode }) {
  return (
    <div className="myapp-page-header">
      <h2>{title}</h2>
      <div className="myapp-page-actions">{children}</div>
    </div>
  );
}
