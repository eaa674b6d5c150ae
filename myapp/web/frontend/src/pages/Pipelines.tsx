// The pipelines list: open in the editor, run, runs, versions, schedule records, export, import YAML.
import { useMemo, useState } from "react";
import { api, can, download, get } from "../api";
import { t } from "../i18n";
import { Empty, ErrorBox, Modal, PageHeader, fmtTime, toast, usePolling } from "../ui";

interface PipelineRow {
  id: number; name: string; project: string; description: string; version: number | null;
  schedule: { type: string; cron: string | null; timezone: string; enabled: boolean; next_fire_at: string | null };
  schedule_error: string | null; updated_at: string;
}

function ImportDialog({ onClose }: { onClose: () => void }) {
  const [text, setText] = useState("");
  const [error, setError] = useState<unknown>(null);
  const save = async () => {
    try {
      const res = await api<{ id: number; version: number }>("POST", "/pipelines/", { text });
      window.location.href = `/pipelines/${res.id}/edit`;
    } catch (err) {
      setError(err);
    }
  };
  return (
    <Modal title={t("import_yaml")} onClose={onClose} wide testId="import-dialog" footer={
      <>
        <button type="button" className="btn btn-default" onClick={onClose}>{t("cancel")}</button>
        <button type="button" className="btn btn-primary" data-testid="import-save" onClick={save}>{t("import")}</button>
      </>
    }>
      <ErrorBox error={error} />
      <textarea className="form-control myapp-code" rows={20} spellCheck={false} value={text} placeholder="name: my-pipeline&#10;tasks: ..."
                onChange={(e) => setText(e.target.value)} data-testid="import-text" />
      <input type="file" accept=".yaml,.yml" className="myapp-file" onChange={async (e) => {
        const file = e.target.files?.[0];
        if (file) setText(await file.text());
      }} />
    </Modal>
  );
}

export function PipelinesPage() {
  const [rows, setRows] = useState<PipelineRow[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [query, setQuery] = useState("");
  const [importing, setImporting] = useState(false);
  const canWrite = can("Pipelines", "write");
  usePolling(async () => {
    try {
      setRows((await get<{ result: PipelineRow[] }>("/pipelines/")).result);
    } catch (err) {
      setError(err);
    }
  }, 10000);
  const shown = useMemo(() => (rows ?? []).filter((r) =>
    `${r.name} ${r.project} ${r.description}`.toLowerCase().includes(query.toLowerCase())), [rows, query]);

  const exportYaml = async (row: PipelineRow) => {
    try {
      download(`${row.name}.yaml`, await api<string>("GET", `/pipelines/${row.id}/export`, { raw: true }), "application/yaml");
    } catch (err) {
      toast(String(err), "danger");
    }
  };

  return (
    <div data-testid="pipelines-page">
      <PageHeader title={t("pipelines")}>
        <input className="form-control input-sm myapp-inline" type="search" placeholder={t("search")} value={query}
               onChange={(e) => setQuery(e.target.value)} />
        {canWrite && <button type="button" className="btn btn-default btn-sm" onClick={() => setImporting(true)}>
          <i className="fa fa-file-import" /> {t("import_yaml")}</button>}
        {canWrite && <a className="btn btn-primary btn-sm" href="/pipelines/new" data-testid="new-pipeline">
          <i className="fa fa-plus" /> {t("new_pipeline")}</a>}
      </PageHeader>
      <ErrorBox error={error} />
      {rows && shown.length === 0 && <Empty>{t("no_pipelines")}</Empty>}
      {shown.length > 0 && (
        <table className="table table-hover table-condensed myapp-table" data-testid="pipelines-table">
          <thead><tr><th>{t("name")}</th><th>{t("project")}</th><th>{t("description")}</th><th>{t("version")}</th>
            <th>{t("schedule")}</th><th>{t("updated")}</th><th /></tr></thead>
          <tbody>
            {shown.map((r) => (
              <tr key={r.id} data-pipeline={r.name}>
                <td><a href={`/pipelines/${r.id}/edit`}><b>{r.name}</b></a></td>
                <td>{r.project}</td>
                <td className="myapp-muted">{r.description}</td>
                <td><a href={`/pipelines/${r.id}/versions`}>v{r.version}</a></td>
                <td>
                  {r.schedule.type === "crontab"
                    ? <span><code>{r.schedule.cron}</code> {r.schedule.timezone} {r.schedule.enabled ? "" : `(${t("disabled")})`}</span>
                    : <span className="myapp-muted">{t("schedule_once")}</span>}
                  {r.schedule_error && <div className="text-danger small" title={r.schedule_error}><i className="fa fa-exclamation-triangle" /> {r.schedule_error}</div>}
                </td>
                <td>{fmtTime(r.updated_at)}</td>
                <td className="text-right myapp-nowrap">
                  <a className="btn btn-xs btn-primary" href={`/pipelines/${r.id}/edit`}><i className="fa fa-pencil-alt" /> {canWrite ? t("edit") : t("view")}</a>{" "}
                  <a className="btn btn-xs btn-default" href={`/runs/?pipeline_id=${r.id}`}><i className="fa fa-tasks" /> {t("runs")}</a>{" "}
                  <a className="btn btn-xs btn-default" href={`/pipelines/${r.id}/versions`}><i className="fa fa-code-branch" /> {t("versions")}</a>{" "}
                  <a className="btn btn-xs btn-default" href={`/schedules/records?pipeline_id=${r.id}`}><i className="fa fa-clock" /> {t("schedule_records")}</a>{" "}
                  <button type="button" className="btn btn-xs btn-default" onClick={() => exportYaml(r)}><i className="fa fa-download" /> YAML</button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {importing && <ImportDialog onClose={() => setImporting(false)} />}
    </div>
  );
}
