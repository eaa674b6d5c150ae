// Run actions shared by the runs list and the run page: stop, retry, copy (editable params), mark.
import { useState } from "react";
import { post } from "../../api";
import { t } from "../../i18n";
import { ErrorBox, Modal, RUN_TERMINAL, errorText, toast } from "../../ui";

export interface RunRow {
  id: number;
  pipeline: string;
  pipeline_id: number;
  version: number | null;
  trigger: string;
  state: string;
  execution_date: string;
  execution_instant?: string | null;
  params: Record<string, string>;
  message: string;
  debug_task: string | null;
  copied_from: number | null;
  runner: string;
  created_at: string | null;
  started_at: string | null;
  ended_at: string | null;
}

export async function runAction(run: RunRow, action: "stop" | "retry", after: () => void): Promise<void> {
  try {
    await post(`/runs/${run.id}/${action}`);
    toast(action === "stop" ? t("stop_sent", { id: run.id }) : t("retry_sent", { id: run.id }), "success");
  } catch (err) {
    toast(errorText(err), "danger");
  }
  after();
}

export function CopyDialog({ run, onClose }: { run: RunRow; onClose: () => void }) {
  const [params, setParams] = useState<Record<string, string>>({ ...run.params });
  const [error, setError] = useState<unknown>(null);
  const copy = async () => {
    try {
      const res = await post<{ id: number }>(`/runs/${run.id}/copy`, { params });
      window.location.href = `/runs/${res.id}`;
    } catch (err) {
      setError(err);
    }
  };
  return (
    <Modal title={t("copy_run", { id: run.id })} onClose={onClose} testId="copy-dialog" footer={
      <>
        <button type="button" className="btn btn-default" onClick={onClose}>{t("cancel")}</button>
        <button type="button" className="btn btn-primary" data-testid="copy-start" onClick={copy}>
          <i className="fa fa-copy" /> {t("start_copy")}</button>
      </>
    }>
      <ErrorBox error={error} />
      <p className="myapp-muted">{t("copy_help")}</p>
      {Object.keys(params).length === 0 && <p className="myapp-muted">{t("no_parameters")}</p>}
      {Object.entries(params).map(([name, value]) => (
        <div className="form-group" key={name}>
          <label>{name}</label>
          <input className="form-control" data-copy-param={name} value={value}
                 onChange={(e) => setParams({ ...params, [name]: e.target.value })} />
        </div>
      ))}
    </Modal>
  );
}

export function RunButtons({ run, canWrite, onChanged, onCopy, size = "xs" }: {
  run: RunRow; canWrite: boolean; onChanged: () => void; onCopy: () => void; size?: "xs" | "sm";
}) {
  if (!canWrite) return null;
  const finished = RUN_TERMINAL.has(run.state);
  const cls = `btn btn-${size}`;
  return (
    <span className="myapp-run-buttons">
      {!finished && (
        <button type="button" className={`${cls} btn-danger`} data-action="stop" onClick={() => runAction(run, "stop", onChanged)}>
          <i className="fa fa-stop" /> {t("stop")}</button>
      )}
      {(run.state === "failed" || run.state === "stopped") && (
        <button type="button" className={`${cls} btn-warning`} data-action="retry" onClick={() => runAction(run, "retry", onChanged)}>
          <i className="fa fa-redo" /> {t("retry")}</button>
      )}
      <button type="button" className={`${cls} btn-default`} data-action="copy" onClick={onCopy}>
        <i className="fa fa-copy" /> {t("copy")}</button>
    </span>
  );
}
