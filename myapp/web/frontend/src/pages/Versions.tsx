// Pipeline versions: list, view (graph + YAML), copy as a new version or as a new pipeline.
import { useEffect, useState } from "react";
import { Background, Controls, ReactFlow, ReactFlowProvider } from "@xyflow/react";
import yaml from "js-yaml";
import { api, can, get } from "../api";
import { t } from "../i18n";
import { EditorNode } from "../graph";
import { Empty, ErrorBox, Modal, PageHeader, Tabs, fmtTime } from "../ui";
import { fromDefinition, layout } from "./editor/model";
import { usePipelineNames } from "./Runs";

interface VersionRow { id: number; number: number; message: string; created_at: string; tasks: number }

function DagPreview({ def }: { def: any }) {
  const state = fromDefinition(def);
  const nodes = state.positioned ? state.nodes : layout(state.nodes, state.edges);
  return (
    <div className="myapp-preview" data-testid="version-dag">
      <ReactFlowProvider>
        <ReactFlow nodes={nodes} edges={state.edges} nodeTypes={{ task: EditorNode }} nodesDraggable={false}
                   nodesConnectable={false} fitView fitViewOptions={{ padding: 0.2, maxZoom: 1 }} proOptions={{ hideAttribution: true }} deleteKeyCode={null}>
          <Background gap={16} />
          <Controls showInteractive={false} />
        </ReactFlow>
      </ReactFlowProvider>
    </div>
  );
}

function VersionDialog({ pipelineId, number, onClose }: { pipelineId: number; number: number; onClose: () => void }) {
  const [text, setText] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [tab, setTab] = useState("graph");
  useEffect(() => {
    api<string>("GET", `/pipelines/${pipelineId}/export`, { raw: true, query: { version: number } }).then(setText, setError);
  }, [pipelineId, number]);
  return (
    <Modal title={t("version_n", { n: number })} onClose={onClose} wide testId="version-dialog">
      <ErrorBox error={error} />
      <Tabs tabs={[{ id: "graph", label: t("graph") }, { id: "yaml", label: "YAML" }]} active={tab} onChange={setTab} />
      {text !== null && tab === "graph" && <DagPreview def={yaml.load(text)} />}
      {text !== null && tab === "yaml" && <pre className="myapp-code myapp-yaml" data-testid="version-yaml">{text}</pre>}
    </Modal>
  );
}

export function VersionsPage({ pipeline_id }: { pipeline_id: number | null }) {
  const pipelines = usePipelineNames();
  const [pid, setPid] = useState<number | null>(pipeline_id);
  const [rows, setRows] = useState<VersionRow[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [viewing, setViewing] = useState<number | null>(null);
  const canWrite = can("Pipelines", "write");
  useEffect(() => {
    if (pid === null) return;
    setRows(null);
    get<{ result: VersionRow[] }>(`/pipelines/${pid}/versions`).then((r) => { setRows(r.result); setError(null); }, setError);
  }, [pid]);
  const name = pipelines.find((p) => p.id === pid)?.name ?? "";
  return (
    <div data-testid="versions-page">
      <PageHeader title={`${t("versions")}${name ? ` · ${name}` : ""}`}>
        <select className="form-control input-sm myapp-inline" name="pipeline" value={pid ?? ""}
                onChange={(e) => {
                  const v = e.target.value ? Number(e.target.value) : null;
                  setPid(v);
                  window.history.replaceState(null, "", v ? `/pipelines/${v}/versions` : "/pipelines/versions");
                }}>
          <option value="">{t("choose_pipeline")}</option>
          {pipelines.map((p) => <option key={p.id} value={p.id}>{p.project}/{p.name}</option>)}
        </select>
        {pid !== null && <a className="btn btn-default btn-sm" href={`/pipelines/${pid}/edit`}>{t("open_editor")}</a>}
      </PageHeader>
      <ErrorBox error={error} />
      {pid === null && <Empty>{t("choose_pipeline")}</Empty>}
      {rows && rows.length === 0 && <Empty>{t("no_versions")}</Empty>}
      {rows && rows.length > 0 && (
        <table className="table table-hover table-condensed myapp-table" data-testid="versions-table">
          <thead><tr><th>{t("version")}</th><th>{t("message")}</th><th>{t("tasks")}</th><th>{t("created")}</th><th /></tr></thead>
          <tbody>
            {rows.map((v, i) => (
              <tr key={v.id} data-version={v.number}>
                <td><b>v{v.number}</b> {i === 0 && <span className="label label-success">{t("current")}</span>}</td>
                <td>{v.message}</td>
                <td>{v.tasks}</td>
                <td>{fmtTime(v.created_at)}</td>
                <td className="text-right myapp-nowrap">
                  <button type="button" className="btn btn-xs btn-default" data-action="view" onClick={() => setViewing(v.number)}>
                    <i className="fa fa-eye" /> {t("view")}</button>{" "}
                  {canWrite && <a className="btn btn-xs btn-default" data-action="copy-version"
                                  href={`/pipelines/${pid}/edit?version=${v.number}`} title={t("copy_as_version_help")}>
                    <i className="fa fa-code-branch" /> {t("copy_as_version")}</a>}{" "}
                  {canWrite && <a className="btn btn-xs btn-default" data-action="copy-pipeline"
                                  href={`/pipelines/new?copy_of=${pid}&version=${v.number}`}>
                    <i className="fa fa-clone" /> {t("copy_as_pipeline")}</a>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {viewing !== null && pid !== null && <VersionDialog pipelineId={pid} number={viewing} onClose={() => setViewing(null)} />}
    </div>
  );
}
