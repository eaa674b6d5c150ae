// Template review: reviewers (admins, project owners) approve pending templates, choosing where they
// are published (their project only, or every project: admins), or reject them with a reason;
// nobody approves what they submitted themselves. Everyone sees the state of their own submissions
// and each template's history.
import { useEffect, useState } from "react";
import { currentMe, get, isMissingEndpoint, post } from "../api";
import { t } from "../i18n";
import { Empty, ErrorBox, Modal, PageHeader, StateBadge, fmtTime, toast } from "../ui";
import { ParamTable, UserTemplate } from "./Templates";

function History({ tpl, onClose }: { tpl: UserTemplate; onClose: () => void }) {
  const [rows, setRows] = useState<{ action: string; reason: string; user: string; at: string }[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => { get(`/user_templates/${tpl.id}/history`).then((r) => setRows(r.result), setError); }, [tpl.id]);
  return (
    <Modal title={t("history_of", { ref: tpl.ref })} onClose={onClose} wide testId="history-dialog">
      <ErrorBox error={error} />
      <p>{tpl.description}</p>
      <ParamTable params={tpl.definition?.parameters} />
      {tpl.definition?.command && <pre className="myapp-code">{tpl.definition.command.join(" ")}</pre>}
      <table className="table table-condensed">
        <thead><tr><th>{t("time")}</th><th>{t("action")}</th><th>{t("user")}</th><th>{t("reason")}</th></tr></thead>
        <tbody>{(rows ?? []).map((r, i) => <tr key={i}><td>{fmtTime(r.at)}</td><td>{r.action}</td><td>{r.user}</td><td>{r.reason}</td></tr>)}</tbody>
      </table>
    </Modal>
  );
}

function RejectDialog({ tpl, onClose, onDone }: { tpl: UserTemplate; onClose: () => void; onDone: () => void }) {
  const [reason, setReason] = useState("");
  const [error, setError] = useState<unknown>(null);
  const reject = async () => {
    try {
      await post(`/user_templates/${tpl.id}/reject`, { reason });
      toast(t("rejected_template", { ref: tpl.ref }), "success");
      onDone();
      onClose();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <Modal title={t("reject_template", { ref: tpl.ref })} onClose={onClose} testId="reject-dialog" footer={<>
      <button type="button" className="btn btn-default" onClick={onClose}>{t("cancel")}</button>
      <button type="button" className="btn btn-danger" data-testid="reject-confirm" disabled={!reason.trim()} onClick={reject}>{t("reject")}</button>
    </>}>
      <ErrorBox error={error} />
      <label>{t("reject_reason")} *</label>
      <textarea className="form-control" rows={3} data-testid="reject-reason" value={reason} onChange={(e) => setReason(e.target.value)} />
    </Modal>
  );
}

function ApproveDialog({ tpl, onClose, onDone }: { tpl: UserTemplate; onClose: () => void; onDone: () => void }) {
  const admin = Boolean(currentMe()?.is_admin);
  const [scope, setScope] = useState<"project" | "all">(tpl.project ? "project" : "all");
  const [comment, setComment] = useState("");
  const [error, setError] = useState<unknown>(null);
  const approve = async () => {
    try {
      await post(`/user_templates/${tpl.id}/approve`, { scope, comment });
      toast(t("approved_template", { ref: tpl.ref }), "success");
      onDone();
      onClose();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <Modal title={t("approve_template", { ref: tpl.ref })} onClose={onClose} testId="approve-dialog" footer={<>
      <button type="button" className="btn btn-default" onClick={onClose}>{t("cancel")}</button>
      <button type="button" className="btn btn-success" data-testid="approve-confirm" onClick={approve}>{t("approve")}</button>
    </>}>
      <ErrorBox error={error} />
      <label>{t("publish_to")}</label>
      <div className="radio"><label>
        <input type="radio" name="publish-scope" value="project" checked={scope === "project"} disabled={!tpl.project}
               onChange={() => setScope("project")} /> {tpl.project ? t("scope_project", { project: tpl.project }) : t("scope_no_project")}
      </label></div>
      <div className="radio"><label>
        <input type="radio" name="publish-scope" value="all" checked={scope === "all"} disabled={!admin}
               onChange={() => setScope("all")} /> {t("scope_all")}{!admin && <span className="myapp-muted"> {t("scope_all_admins")}</span>}
      </label></div>
      <label>{t("comment")}</label>
      <textarea className="form-control" rows={2} data-testid="approve-comment" value={comment} onChange={(e) => setComment(e.target.value)} />
    </Modal>
  );
}

function Table({ rows, reviewer, onChanged }: { rows: UserTemplate[]; reviewer: boolean; onChanged: () => void }) {
  const [history, setHistory] = useState<UserTemplate | null>(null);
  const [rejecting, setRejecting] = useState<UserTemplate | null>(null);
  const [approving, setApproving] = useState<UserTemplate | null>(null);
  return (
    <>
      <table className="table table-condensed table-hover myapp-table">
        <thead><tr><th>{t("name")}</th><th>{t("owner")}</th><th>{t("project")}</th><th>{t("status")}</th><th>{t("updated")}</th><th /></tr></thead>
        <tbody>
          {rows.map((tpl) => (
            <tr key={tpl.id} data-template={tpl.name} data-status={tpl.status}>
              <td><b>{tpl.ref}</b> <small className="myapp-muted">{tpl.category}</small><div className="myapp-muted small">{tpl.description}</div></td>
              <td>{tpl.owner}</td>
              <td>{tpl.project ?? ""}</td>
              <td><StateBadge state={tpl.status === "pending" ? "pending_review" : tpl.status} />
                {tpl.rejection_reason && <div className="text-danger small">{tpl.rejection_reason}</div>}</td>
              <td>{fmtTime(tpl.updated_at)}</td>
              <td className="text-right myapp-nowrap">
                <button type="button" className="btn btn-xs btn-default" onClick={() => setHistory(tpl)}><i className="fa fa-history" /> {t("details")}</button>{" "}
                {reviewer && tpl.can_review && <>
                  <button type="button" className="btn btn-xs btn-success" data-action="approve" onClick={() => setApproving(tpl)}><i className="fa fa-check" /> {t("approve")}</button>{" "}
                  <button type="button" className="btn btn-xs btn-danger" data-action="reject" onClick={() => setRejecting(tpl)}><i className="fa fa-times" /> {t("reject")}</button>
                </>}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {history && <History tpl={history} onClose={() => setHistory(null)} />}
      {rejecting && <RejectDialog tpl={rejecting} onClose={() => setRejecting(null)} onDone={onChanged} />}
      {approving && <ApproveDialog tpl={approving} onClose={() => setApproving(null)} onDone={onChanged} />}
    </>
  );
}

export function ReviewPage() {
  const [pending, setPending] = useState<UserTemplate[] | null>(null);
  const [mine, setMine] = useState<UserTemplate[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [missing, setMissing] = useState(false);
  const load = async () => {
    try {
      const [p, m] = await Promise.all([
        get<{ result: UserTemplate[] }>("/user_templates/", { scope: "review" }),
        get<{ result: UserTemplate[] }>("/user_templates/", { scope: "mine" }),
      ]);
      setPending(p.result);
      setMine(m.result);
      setError(null);
    } catch (err) {
      if (isMissingEndpoint(err)) setMissing(true); else setError(err);
    }
  };
  useEffect(() => { load(); }, []);
  return (
    <div data-testid="review-page">
      <PageHeader title={t("template_review")}>
        <a className="btn btn-default btn-sm" href="/templates/?tab=mine">{t("my_templates")}</a>
      </PageHeader>
      {missing && <div className="alert alert-info" data-testid="review-missing">{t("endpoint_missing", { path: "/api/v1/user_templates/" })}</div>}
      <ErrorBox error={error} />
      <h4>{t("waiting_for_review")}</h4>
      {pending && pending.length === 0 && <Empty>{currentMe()?.is_admin ? t("nothing_to_review") : t("nothing_to_review_owner")}</Empty>}
      {pending && pending.length > 0 && <div data-testid="review-table"><Table rows={pending} reviewer onChanged={load} /></div>}
      <h4>{t("my_submissions")}</h4>
      {mine && mine.length === 0 && <Empty>{t("no_user_templates")}</Empty>}
      {mine && mine.length > 0 && <div data-testid="mine-table"><Table rows={mine} reviewer={false} onChanged={load} /></div>}
    </div>
  );
}
