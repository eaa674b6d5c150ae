// The backfill guard on the pages: a save or a schedule toggle answered 409 with `backfill`
// (more runs than the server's backfill_confirm) asks here, then is sent again with confirmation.
import { useState } from "react";
import { ApiError } from "./api";
import { t } from "./i18n";
import { Modal, fmtTime } from "./ui";

export interface BackfillInfo { runs: number; fire_times: number; first: string | null; last: string | null; threshold: number }

/** Return the backfill a 409 answer carries, or null if it is another error. */
export function backfillOf(err: unknown): BackfillInfo | null {
  if (!(err instanceof ApiError) || err.status !== 409) return null;
  const info = (err.body as any)?.backfill;
  return info && typeof info.runs === "number" ? (info as BackfillInfo) : null;
}

export function BackfillDialog({ info, onConfirm, onClose }: {
  info: BackfillInfo; onConfirm: () => void; onClose: () => void;
}) {
  const [busy, setBusy] = useState(false);
  return (
    <Modal title={t("backfill_title")} onClose={onClose} testId="backfill-dialog" footer={
      <>
        <button type="button" className="btn btn-default" onClick={onClose}>{t("cancel")}</button>
        <button type="button" className="btn btn-warning" data-testid="backfill-confirm" disabled={busy}
                onClick={() => { setBusy(true); onConfirm(); }}>{t("backfill_go", { runs: info.runs })}</button>
      </>
    }>
      <p data-testid="backfill-text">{t("backfill_text", {
        runs: info.runs, first: fmtTime(info.first), last: fmtTime(info.last), threshold: info.threshold })}</p>
    </Modal>
  );
}
