// Projects and members: who owns, works in, or only views each project.
import { useEffect, useState } from "react";
import { api, currentMe, get, post } from "../api";
import { t } from "../i18n";
import { Empty, ErrorBox, PageHeader, errorText, fmtTime, toast } from "../ui";

interface Member { user_id: number; username: string; role: string }
interface Project { id: number; name: string; description: string; members: Member[]; my_role: string | null; can_manage: boolean; created_at: string }
const ROLES = ["owner", "member", "viewer"];

function ProjectCard({ project, onChanged }: { project: Project; onChanged: () => void }) {
  const [username, setUsername] = useState("");
  const [role, setRole] = useState("member");
  const act = async (fn: () => Promise<unknown>, ok: string) => {
    try {
      await fn();
      toast(ok, "success");
    } catch (err) {
      toast(errorText(err), "danger");
    }
    onChanged();
  };
  return (
    <div className="panel panel-default" data-project={project.name}>
      <div className="panel-heading">
        <b>{project.name}</b> <span className="myapp-muted">{project.description}</span>
        {project.my_role && <span className="label label-info pull-right">{t(`role_${project.my_role}` as any)}</span>}
      </div>
      <table className="table table-condensed">
        <thead><tr><th>{t("user")}</th><th>{t("role")}</th><th /></tr></thead>
        <tbody>
          {project.members.length === 0 && <tr><td colSpan={3} className="myapp-muted">{t("no_members")}</td></tr>}
          {project.members.map((m) => (
            <tr key={m.user_id} data-member={m.username}>
              <td>{m.username}</td>
              <td>
                {project.can_manage ? (
                  <select className="form-control input-sm myapp-inline" value={m.role}
                          onChange={(e) => act(() => post(`/projects/${project.id}/members`, { username: m.username, role: e.target.value }), t("saved"))}>
                    {ROLES.map((r) => <option key={r} value={r}>{t(`role_${r}` as any)}</option>)}
                  </select>
                ) : t(`role_${m.role}` as any)}
              </td>
              <td className="text-right">
                {project.can_manage && (
                  <button type="button" className="btn btn-xs btn-link" title={t("remove")}
                          onClick={() => act(() => api("DELETE", `/projects/${project.id}/members/${m.user_id}`), t("removed"))}>
                    <i className="fa fa-times" /> {t("remove")}</button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {project.can_manage && (
        <form className="form-inline panel-body" onSubmit={(e) => {
          e.preventDefault();
          act(() => post(`/projects/${project.id}/members`, { username, role }), t("saved")).then(() => setUsername(""));
        }}>
          <input className="form-control input-sm" placeholder={t("username")} value={username} data-testid="member-username"
                 onChange={(e) => setUsername(e.target.value)} />{" "}
          <select className="form-control input-sm" value={role} onChange={(e) => setRole(e.target.value)}>
            {ROLES.map((r) => <option key={r} value={r}>{t(`role_${r}` as any)}</option>)}
          </select>{" "}
          <button type="submit" className="btn btn-sm btn-primary" disabled={!username.trim()}>
            <i className="fa fa-user-plus" /> {t("add_member")}</button>
        </form>
      )}
      <div className="panel-footer myapp-muted small">{t("created")}: {fmtTime(project.created_at)}</div>
    </div>
  );
}

export function ProjectsPage() {
  const [list, setList] = useState<Project[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const load = () => get<{ result: Project[] }>("/projects/").then((r) => { setList(r.result); setError(null); }, setError);
  useEffect(() => { load(); }, []);
  const create = async () => {
    try {
      await post("/projects/", { name, description });
      setName("");
      setDescription("");
      toast(t("saved"), "success");
    } catch (err) {
      setError(err);
    }
    load();
  };
  return (
    <div data-testid="projects-page">
      <PageHeader title={t("projects_members")} />
      <p className="myapp-muted">{t("projects_help")}</p>
      <ErrorBox error={error} />
      {currentMe()?.is_admin && (
        <form className="form-inline myapp-filters" onSubmit={(e) => { e.preventDefault(); create(); }}>
          <input className="form-control input-sm" placeholder={t("project_name")} value={name} name="project-name"
                 onChange={(e) => setName(e.target.value)} />{" "}
          <input className="form-control input-sm" placeholder={t("description")} value={description}
                 onChange={(e) => setDescription(e.target.value)} />{" "}
          <button type="submit" className="btn btn-sm btn-primary" disabled={!name.trim()}><i className="fa fa-plus" /> {t("create_project")}</button>
        </form>
      )}
      {list && list.length === 0 && <Empty>{t("no_projects")}</Empty>}
      <div className="myapp-projects">
        {(list ?? []).map((p) => <ProjectCard key={p.id} project={p} onChanged={load} />)}
      </div>
    </div>
  );
}
