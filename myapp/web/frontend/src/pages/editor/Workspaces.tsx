// The task form's workspaces (docs/templates.md §10): named volumes the task mounts, each a name, a
// PersistentVolumeClaim and a mount path, referred to in commands, args, env and SeqPod steps as
// $(workspaces.NAME.path). Rows are checked as the server checks them; the server's own errors on
// save (tasks[T].workspaces.NAME..., a reference to an unbound workspace) show at the row too.
import type { FieldError } from "../../api";
import { t } from "../../i18n";
import { WorkspaceRow, claimPrefix, workspaceErrors } from "./model";

/** Return the server's errors about workspace `name` of task `task` (and about references to it). */
function serverErrors(task: string, name: string, errors: FieldError[]): FieldError[] {
  const at = `tasks[${task}].workspaces.${name}`;
  return errors.filter((e) => e.field === at || e.field.startsWith(at + ".") ||
    (e.message.includes(`unknown workspace '${name}'`) && e.field.startsWith(`tasks[${task}].`)));
}

export function WorkspacesForm({ task, rows, project, kubernetes, errors, readOnly, onChange }: {
  task: string; rows: WorkspaceRow[]; project: string; kubernetes: boolean; errors: FieldError[]; readOnly: boolean;
  onChange: (rows: WorkspaceRow[]) => void;
}) {
  const local = workspaceErrors(task, rows, project, kubernetes);
  const prefix = claimPrefix(project);
  const set = (i: number, patch: Partial<WorkspaceRow>) => onChange(rows.map((r, j) => (j === i ? { ...r, ...patch } : r)));
  // References to workspaces the task does not bind, reported by the server on save.
  const unbound = errors.filter((e) => e.field.startsWith(`tasks[${task}].`) && e.message.startsWith("unknown workspace")
    && !rows.some((r) => r.name && e.message.includes(`'${r.name}'`)));
  return (
    <div className="myapp-workspaces" data-testid="workspaces">
      <h5>{t("workspaces")} <small className="myapp-muted">{t("workspaces_help")}</small></h5>
      {rows.length > 0 && (
        <div className="myapp-ws-row myapp-ws-head small myapp-muted">
          <span>{t("name")}</span><span>{t("workspace_claim")}</span><span>{t("workspace_path")}</span><span />
        </div>
      )}
      {rows.map((row, i) => {
        const mine = local.filter((e) => e.row === i);
        const theirs = row.name ? serverErrors(task, row.name, errors) : [];
        const bad = (suffix: string) => mine.some((e) => e.field.endsWith(suffix)) || theirs.some((e) => e.field.endsWith(suffix));
        const nameBad = mine.some((e) => !e.field.endsWith(".path") && !e.field.endsWith(".claim"));
        const ref = `$(workspaces.${row.name || "NAME"}.path)`;
        return (
          <div key={i} className="myapp-workspace" data-workspace={i}>
            <div className="myapp-ws-row">
              <input className={"form-control input-sm" + (nameBad ? " myapp-input-error" : "")} placeholder={t("name")}
                     value={row.name} disabled={readOnly} data-testid="workspace-name"
                     onChange={(e) => set(i, { name: e.target.value })} />
              <input className={"form-control input-sm" + (bad(".claim") ? " myapp-input-error" : "")}
                     placeholder={kubernetes ? `${prefix}...` : ""} title={t("workspace_claim")} value={row.claim} disabled={readOnly}
                     data-testid="workspace-claim" onChange={(e) => set(i, { claim: e.target.value })} />
              <input className={"form-control input-sm" + (bad(".path") ? " myapp-input-error" : "")}
                     placeholder={`/workspaces/${row.name || "NAME"}`} title={t("workspace_path_help")} value={row.path}
                     disabled={readOnly} data-testid="workspace-path" onChange={(e) => set(i, { path: e.target.value })} />
              {readOnly ? <span /> : <button type="button" className="btn btn-link btn-xs" title={t("remove")} data-testid="workspace-remove"
                                    onClick={() => onChange(rows.filter((_, j) => j !== i))}><i className="fa fa-times" /></button>}
            </div>
            {[...mine, ...theirs].map((e, k) => (
              <div key={k} className="text-danger small" data-testid="workspace-error"><code>{e.field}</code>: {e.message}</div>
            ))}
            {row.name && !nameBad && (
              <div className="myapp-muted small">{t("workspace_refer")} <code data-testid="workspace-ref">{ref}</code></div>
            )}
          </div>
        );
      })}
      {unbound.map((e, k) => (
        <div key={k} className="text-danger small" data-testid="workspace-error"><code>{e.field}</code>: {e.message}</div>
      ))}
      {!readOnly && <button type="button" className="btn btn-default btn-xs" data-testid="add-workspace"
                            onClick={() => onChange([...rows, { name: "", claim: "", path: "" }])}>
        <i className="fa fa-plus" /> {t("add_workspace")}</button>}
      {rows.length > 0 && (
        <div className="help-block small" data-testid="workspace-claim-rule">
          {kubernetes ? t("workspace_claim_rule_k8s", { prefix }) : t("workspace_claim_rule_local", { prefix })}
        </div>
      )}
    </div>
  );
}
