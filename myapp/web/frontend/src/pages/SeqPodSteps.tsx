// A SeqPod template's steps (docs/templates.md §9, `extra.steps`): the form of the template page
// (add, remove, reorder; each step a name, an optional image, and an argument list or an embedded
// shell/Python script) and the read-only list the catalog and the editor's task form show.
// Steps belong to the template, not to the task: a pipeline's task picks a SeqPod template and
// binds its parameters and workspaces; the steps are edited where the template is.
import type { FieldError } from "../api";
import { t } from "../i18n";

export type StepMode = "command" | "shell" | "python";
export interface StepRow { name: string; image: string; mode: StepMode; command: string; script: string; language: boolean }

export const STEP_NAME = /^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$/;

/** Read `extra.steps` into form rows (a command is one argument per line). */
export function stepsFromExtra(extra: Record<string, unknown> | undefined): StepRow[] {
  const raw = extra?.steps;
  if (!Array.isArray(raw)) return [];
  return raw.map((item: any) => {
    const script = typeof item?.script === "string";
    return {
      name: String(item?.name ?? ""), image: String(item?.image ?? ""),
      mode: script ? (item.language === "python" ? "python" : "shell") : "command",
      command: Array.isArray(item?.command) ? item.command.map(String).join("\n") : "",
      script: script ? item.script : "", language: script && "language" in item,
    };
  });
}

/** Write form rows as `extra.steps` (what the server checks and stores). */
export function stepsToExtra(rows: StepRow[]): Record<string, unknown>[] {
  return rows.map((r) => {
    const step: Record<string, unknown> = { name: r.name.trim() };
    if (r.image.trim()) step.image = r.image.trim();
    if (r.mode === "command") {
      step.command = r.command.split("\n").map((x) => x.trimEnd()).filter((x) => x !== "");
    } else {
      step.script = r.script;
      if (r.mode === "python" || r.language) step.language = r.mode;
    }
    return step;
  });
}

/** What the browser can check before saving, in the server's words (myapp/builtins/seqpod.py). */
export function localStepErrors(rows: StepRow[]): FieldError[] {
  const out: FieldError[] = [];
  if (!rows.length) out.push({ field: "extra.steps", message: "a seqpod template needs a non-empty list of steps" });
  const seen = new Set<string>();
  rows.forEach((r, i) => {
    const at = `extra.steps[${i}]`;
    if (!STEP_NAME.test(r.name.trim())) {
      out.push({ field: `${at}.name`, message: "a step name is 1-42 characters of a-z, 0-9 and - (not at the ends)" });
    } else if (seen.has(r.name.trim())) {
      out.push({ field: `${at}.name`, message: `step '${r.name.trim()}' is defined twice` });
    }
    seen.add(r.name.trim());
    if (r.mode === "command" && !r.command.trim()) out.push({ field: `${at}.command`, message: "must be a non-empty list of text" });
    if (r.mode !== "command" && !r.script.trim()) out.push({ field: `${at}.script`, message: "must be non-empty text" });
  });
  return out;
}

/** Return the errors about step `i` (its own fields and `extra.steps[i]` itself). */
function errorsOf(i: number, errors: FieldError[]): FieldError[] {
  const at = `extra.steps[${i}]`;
  return errors.filter((e) => e.field === at || e.field.startsWith(at + "."));
}

export function StepsEditor({ rows, image, errors, onChange }: {
  rows: StepRow[]; image: string; errors: FieldError[]; onChange: (rows: StepRow[]) => void;
}) {
  const set = (i: number, patch: Partial<StepRow>) => onChange(rows.map((r, j) => (j === i ? { ...r, ...patch } : r)));
  const move = (i: number, by: number) => {
    const next = [...rows];
    [next[i], next[i + by]] = [next[i + by], next[i]];
    onChange(next);
  };
  const whole = errors.filter((e) => e.field === "extra.steps" || e.field === "command");
  return (
    <div className="myapp-steps" data-testid="seqpod-steps">
      <h5>{t("seqpod_steps")} <small className="myapp-muted">{t("seqpod_steps_help")}</small></h5>
      {whole.map((e, k) => <div key={k} className="text-danger small" data-testid="step-error"><code>{e.field}</code>: {e.message}</div>)}
      {rows.map((r, i) => {
        const mine = errorsOf(i, errors);
        const bad = (key: string) => mine.some((e) => e.field === `extra.steps[${i}].${key}` || e.field.startsWith(`extra.steps[${i}].${key}[`));
        return (
          <div key={i} className={"myapp-step" + (mine.length ? " myapp-step-error" : "")} data-step={i} data-step-name={r.name}>
            <div className="myapp-step-head">
              <span className="myapp-step-number">{i + 1}</span>
              <input className={"form-control input-sm" + (bad("name") ? " myapp-input-error" : "")} placeholder={t("step_name")}
                     title={t("step_name")} value={r.name} data-testid="step-name" onChange={(e) => set(i, { name: e.target.value })} />
              <input className={"form-control input-sm" + (bad("image") ? " myapp-input-error" : "")}
                     placeholder={image ? `${t("image")}: ${image}` : t("image")} title={t("step_image_help")} value={r.image}
                     data-testid="step-image" onChange={(e) => set(i, { image: e.target.value })} />
              <select className="form-control input-sm myapp-step-mode" value={r.mode} data-testid="step-mode"
                      onChange={(e) => set(i, { mode: e.target.value as StepMode })}>
                <option value="command">{t("step_mode_command")}</option>
                <option value="shell">{t("step_mode_shell")}</option>
                <option value="python">{t("step_mode_python")}</option>
              </select>
              <span className="btn-group btn-group-xs myapp-nowrap">
                <button type="button" className="btn btn-default" title={t("move_up")} disabled={i === 0}
                        data-testid="step-up" onClick={() => move(i, -1)}><i className="fa fa-arrow-up" /></button>
                <button type="button" className="btn btn-default" title={t("move_down")} disabled={i === rows.length - 1}
                        data-testid="step-down" onClick={() => move(i, 1)}><i className="fa fa-arrow-down" /></button>
                <button type="button" className="btn btn-default" title={t("remove")} data-testid="step-remove"
                        onClick={() => onChange(rows.filter((_, j) => j !== i))}><i className="fa fa-times" /></button>
              </span>
            </div>
            {r.mode === "command" ? (
              <textarea className={"form-control input-sm myapp-code" + (bad("command") ? " myapp-input-error" : "")} rows={2}
                        spellCheck={false} value={r.command} placeholder={"cat\nresult.txt"} data-testid="step-command"
                        title={t("template_command_help")} onChange={(e) => set(i, { command: e.target.value })} />
            ) : (
              <textarea className={"form-control input-sm myapp-code" + (bad("script") ? " myapp-input-error" : "")} rows={4}
                        spellCheck={false} value={r.script} data-testid="step-script"
                        placeholder={r.mode === "python" ? "print(open('shared.txt').read())" : "echo \"$(params.greeting)\" > shared.txt"}
                        onChange={(e) => set(i, { script: e.target.value })} />
            )}
            <div className="help-block small">{r.mode === "command" ? t("template_command_help") : t(r.mode === "python" ? "step_python_help" : "step_shell_help")}</div>
            {mine.map((e, k) => <div key={k} className="text-danger small" data-testid="step-error"><code>{e.field}</code>: {e.message}</div>)}
          </div>
        );
      })}
      <button type="button" className="btn btn-default btn-xs" data-testid="add-step"
              onClick={() => onChange([...rows, { name: `step-${rows.length + 1}`, image: "", mode: "shell", command: "", script: "", language: false }])}>
        <i className="fa fa-plus" /> {t("add_step")}</button>
    </div>
  );
}

/** The steps of a SeqPod template, read-only (catalog card, the editor's task form). */
export function StepsList({ extra, image }: { extra: Record<string, unknown> | undefined; image?: string }) {
  const rows = stepsFromExtra(extra);
  if (!rows.length) return null;
  return (
    <ol className="myapp-steps-list small" data-testid="seqpod-steps-list">
      {rows.map((r, i) => (
        <li key={i} data-step-name={r.name}>
          <b>{r.name}</b>{" "}
          <span className="label label-default">{r.mode === "command" ? t("step_mode_command") : t(r.mode === "python" ? "step_mode_python" : "step_mode_shell")}</span>
          {(r.image || image) && <span className="myapp-muted"> {r.image || image}</span>}
          <div><code className="myapp-step-code">{r.mode === "command" ? r.command.split("\n").join(" ") : r.script.split("\n")[0] + (r.script.includes("\n") ? " …" : "")}</code></div>
        </li>
      ))}
    </ol>
  );
}
