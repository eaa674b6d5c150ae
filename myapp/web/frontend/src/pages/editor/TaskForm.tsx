// The side panel of the editor: a form generated from the template's parameter schema, input
// bindings chosen from ancestors' outputs and global parameters, outputs, retries, resources, env.
import { ReactNode, useEffect, useState } from "react";
import type { FieldError } from "../../api";
import { t } from "../../i18n";
import { StepsList } from "../SeqPodSteps";
import { WorkspacesForm } from "./Workspaces";
import type { Binding, InputRow, OutputDef, ParamDef, PipelineMeta, SlicesData, TaskData, Template } from "./model";
import { PARAMS, TRIGGER_RULES } from "./model";

export interface SourceOption { value: string; label: string }

/** Options of a binding select: a literal value, each global parameter, each ancestor's outputs. */
export function sourceOptions(meta: PipelineMeta, upstream: { task: string; outputs: OutputDef[] }[]): SourceOption[] {
  const options: SourceOption[] = [{ value: "literal:", label: t("source_value") }];
  for (const p of meta.parameters) if (p.name) options.push({ value: `param:${PARAMS}.${p.name}`, label: `params.${p.name}` });
  for (const u of upstream) {
    for (const o of u.outputs) options.push({ value: `task:${u.task}.${o.name}`, label: `${u.task}.${o.name} (${o.type})` });
  }
  return options;
}

function bindingKey(b: Binding): string {
  return b.kind === "literal" ? "literal:" : `${b.kind}:${b.ref}`;
}

function keyToBinding(key: string, value: string): Binding {
  const [kind, ...rest] = key.split(":");
  const ref = rest.join(":");
  return kind === "literal" ? { kind: "literal", value, ref: "" } : { kind: kind as Binding["kind"], value: "", ref };
}

function Row({ label, required, help, children }: { label: ReactNode; required?: boolean; help?: string; children: ReactNode }) {
  return (
    <div className="form-group myapp-field">
      <label>{label}{required && <span className="myapp-required" title={t("required")}> *</span>}</label>
      {children}
      {help && <div className="help-block">{help}</div>}
    </div>
  );
}

/** One widget for a declared parameter, by type: choices, booleans, numbers, text, JSON, secrets. */
export function ParamWidget({ name, defn, value, disabled, onChange }: {
  name: string; defn: ParamDef; value: unknown; disabled: boolean; onChange: (v: unknown) => void;
}) {
  const [reveal, setReveal] = useState(false);
  const text = value === undefined || value === null ? "" : typeof value === "object" ? JSON.stringify(value) : String(value);
  const placeholder = defn.default !== undefined && defn.default !== null ? `${t("default")}: ${defn.type === "secret" ? "******" : String(defn.default)}` : "";
  const common = { "data-param": name, disabled, className: "form-control input-sm" };
  switch (defn.type) {
    case "choice":
      return (
        <select {...common} value={text} onChange={(e) => onChange(e.target.value)}>
          <option value="">{defn.default !== undefined ? `(${t("default")}: ${String(defn.default)})` : t("choose")}</option>
          {(defn.choices ?? []).map((c) => <option key={c} value={c}>{c}</option>)}
        </select>
      );
    case "boolean": {
      const checked = value === undefined || value === "" ? Boolean(defn.default === true || defn.default === "true") : value === true || value === "true";
      return (
        <div className="checkbox"><label>
          <input type="checkbox" data-param={name} disabled={disabled} checked={checked} onChange={(e) => onChange(e.target.checked)} />
          {" "}{checked ? t("yes") : t("no")}
        </label></div>
      );
    }
    case "integer":
    case "number":
      return <input {...common} type="text" inputMode="decimal" value={text} placeholder={placeholder}
                    onChange={(e) => onChange(e.target.value)} />;
    case "secret":
      return (
        <div className="input-group input-group-sm">
          <input {...common} type={reveal ? "text" : "password"} autoComplete="new-password" value={text}
                 placeholder={placeholder} onChange={(e) => onChange(e.target.value)} />
          <span className="input-group-btn">
            <button type="button" className="btn btn-default" onClick={() => setReveal(!reveal)} title={t("show_hide")}>
              <i className={"fa " + (reveal ? "fa-eye-slash" : "fa-eye")} />
            </button>
          </span>
        </div>
      );
    case "text":
    case "json":
      return <textarea {...common} rows={defn.script ? 6 : 3} spellCheck={false} value={text} placeholder={placeholder}
                       className="form-control input-sm myapp-code" onChange={(e) => onChange(e.target.value)} />;
    default:
      return <input {...common} type="text" value={text} placeholder={placeholder} onChange={(e) => onChange(e.target.value)} />;
  }
}

function SourceSelect({ binding, options, disabled, testId, onChange }: {
  binding: Binding; options: SourceOption[]; disabled: boolean; testId: string; onChange: (b: Binding) => void;
}) {
  const key = bindingKey(binding);
  const known = options.some((o) => o.value === key);
  return (
    <select className="form-control input-sm myapp-source" data-source={testId} disabled={disabled} value={key}
            onChange={(e) => onChange(keyToBinding(e.target.value, binding.kind === "literal" ? binding.value : ""))}>
      {!known && <option value={key}>{binding.ref} ({t("not_an_ancestor")})</option>}
      {options.map((o) => <option key={o.value} value={o.value}>{o.label}</option>)}
    </select>
  );
}

export function TaskForm(props: {
  data: TaskData; template: Template | undefined; meta: PipelineMeta; options: SourceOption[];
  readOnly: boolean; nameError: string; canDebug: boolean;
  kubernetes?: boolean; errors?: FieldError[];   // the installation's executor; the server's errors on this task
  onChange: (patch: Partial<TaskData>) => void; onRename: (name: string) => void;
  onDelete: () => void; onDebug: () => void;
}) {
  const { data, template, readOnly, options } = props;
  const [draftName, setDraftName] = useState(data.name);
  useEffect(() => setDraftName(data.name), [data.name]);
  const params = Object.entries(template?.parameters ?? {});
  const paramNames = new Set(params.map(([n]) => n));
  const otherInputs = data.inputs.filter((row) => !paramNames.has(row.name));
  const bindingOf = (name: string) => data.inputs.find((row) => row.name === name)?.binding;

  const setParamSource = (name: string, b: Binding) => {
    const inputs = data.inputs.filter((row) => row.name !== name);
    if (b.kind === "literal") {
      props.onChange({ inputs });
    } else {
      const args = { ...data.args };
      delete args[name];
      props.onChange({ inputs: [...inputs, { name, binding: b }], args });
    }
  };
  const setInputs = (rows: InputRow[]) => props.onChange({ inputs: [...data.inputs.filter((r) => paramNames.has(r.name)), ...rows] });
  const ro = readOnly;

  return (
    <div className="myapp-task-form" data-testid="task-form" data-task={data.name}>
      <h4>{t("task")}: {data.name}</h4>
      <Row label={t("task_name")} required>
        <input className={"form-control input-sm" + (props.nameError ? " myapp-input-error" : "")} name="task-name"
               value={draftName} disabled={ro}
               onChange={(e) => { setDraftName(e.target.value); props.onRename(e.target.value); }}
               onBlur={() => setDraftName(data.name)} />
        {props.nameError && <div className="text-danger small" data-testid="name-error">{props.nameError}</div>}
      </Row>
      <Row label={t("description")}>
        <input className="form-control input-sm" name="task-description" value={data.description} disabled={ro}
               onChange={(e) => props.onChange({ description: e.target.value })} />
      </Row>
      {data.template ? (
        <div className="myapp-template-info">
          <i className="fa fa-cube" /> <b>{data.template}</b>
          {template ? (template.description ? <span className="myapp-muted"> — {template.description}</span> : null)
            : <span className="text-danger"> {t("unknown_template")}</span>}
          {/* A template task may run another image than the template's (e.g. a myapp.sdk OP's image). */}
          <Row label={t("image")}>
            <input className="form-control input-sm" name="task-image" value={data.image} disabled={ro}
                   placeholder={template?.image ?? ""}
                   onChange={(e) => props.onChange({ image: e.target.value })} />
          </Row>
          {template?.kind === "seqpod" && (
            <div className="myapp-field">
              <label>{t("seqpod_steps")}</label> <a className="small" href="/templates/?tab=mine">{t("seqpod_steps_where")}</a>
              <StepsList extra={template.extra} image={data.image || template.image} />
            </div>
          )}
        </div>
      ) : (
        <>
          <Row label={t("image")} required>
            <input className="form-control input-sm" name="task-image" value={data.image} disabled={ro}
                   onChange={(e) => props.onChange({ image: e.target.value })} />
          </Row>
          <Row label={t("command")} required help={t("command_help")}>
            <textarea className="form-control input-sm myapp-code" name="task-command" rows={4} disabled={ro}
                      value={data.command.join("\n")}
                      onChange={(e) => props.onChange({ command: e.target.value.split("\n") })} />
          </Row>
        </>
      )}

      {params.length > 0 && <h5>{t("parameters")}</h5>}
      {params.map(([name, defn]) => {
        const bound = bindingOf(name);
        return (
          <Row key={name} label={<span>{defn.label || name} <code className="myapp-muted">{name}</code> <small className="myapp-muted">{defn.type ?? "string"}</small></span>}
               required={defn.required} help={defn.description}>
            <div className="myapp-param-row">
              <SourceSelect binding={bound ?? { kind: "literal", value: "", ref: "" }} options={options} disabled={ro}
                            testId={name} onChange={(b) => setParamSource(name, b)} />
              {!bound && (
                <ParamWidget name={name} defn={defn} value={data.args[name]} disabled={ro}
                             onChange={(v) => props.onChange({ args: { ...data.args, [name]: v } })} />
              )}
            </div>
          </Row>
        );
      })}

      <h5>{t("inputs")} <small className="myapp-muted">{t("inputs_help")}</small></h5>
      {otherInputs.map((row, i) => (
        <div key={i} className="myapp-input-row" data-input={row.name}>
          <input className="form-control input-sm" placeholder={t("name")} value={row.name} disabled={ro}
                 data-testid="input-name"
                 onChange={(e) => setInputs(otherInputs.map((r, j) => (j === i ? { ...r, name: e.target.value } : r)))} />
          <SourceSelect binding={row.binding} options={options} disabled={ro} testId={`input-${i}`}
                        onChange={(b) => setInputs(otherInputs.map((r, j) => (j === i ? { ...r, binding: b } : r)))} />
          {row.binding.kind === "literal" && (
            <input className="form-control input-sm" placeholder={t("value")} value={row.binding.value} disabled={ro}
                   data-testid="input-value"
                   onChange={(e) => setInputs(otherInputs.map((r, j) => (j === i ? { ...r, binding: { ...r.binding, value: e.target.value } } : r)))} />
          )}
          {!ro && <button type="button" className="btn btn-link btn-xs" title={t("remove")}
                          onClick={() => setInputs(otherInputs.filter((_, j) => j !== i))}><i className="fa fa-times" /></button>}
        </div>
      ))}
      {!ro && <button type="button" className="btn btn-default btn-xs" data-testid="add-input"
                      onClick={() => setInputs([...otherInputs, { name: "", binding: options[1] ? keyToBinding(options[options.length - 1].value, "") : { kind: "literal", value: "", ref: "" } }])}>
        <i className="fa fa-plus" /> {t("add_input")}</button>}

      <h5>{t("outputs")}</h5>
      {(template?.outputs ?? []).map((o) => (
        <div key={o.name} className="myapp-muted small">{o.name}: {o.path} ({o.type}) — {t("from_template")}</div>
      ))}
      {data.outputs.map((o, i) => (
        <div key={i} className="myapp-input-row" data-output={o.name}>
          <input className="form-control input-sm" placeholder={t("name")} value={o.name} disabled={ro} data-testid="output-name"
                 onChange={(e) => props.onChange({ outputs: data.outputs.map((x, j) => (j === i ? { ...x, name: e.target.value } : x)) })} />
          <input className="form-control input-sm" placeholder={t("path")} value={o.path} disabled={ro} data-testid="output-path"
                 onChange={(e) => props.onChange({ outputs: data.outputs.map((x, j) => (j === i ? { ...x, path: e.target.value } : x)) })} />
          <select className="form-control input-sm" value={o.type} disabled={ro} data-testid="output-type"
                  onChange={(e) => props.onChange({ outputs: data.outputs.map((x, j) => (j === i ? { ...x, type: e.target.value as OutputDef["type"] } : x)) })}>
            <option value="text">{t("output_text")}</option>
            <option value="file">{t("output_file")}</option>
            <option value="files">{t("output_files")}</option>
          </select>
          {!ro && <button type="button" className="btn btn-link btn-xs" title={t("remove")}
                          onClick={() => props.onChange({ outputs: data.outputs.filter((_, j) => j !== i) })}><i className="fa fa-times" /></button>}
        </div>
      ))}
      {!ro && <button type="button" className="btn btn-default btn-xs" data-testid="add-output"
                      onClick={() => props.onChange({ outputs: [...data.outputs, { name: "", path: "", type: "text" }] })}>
        <i className="fa fa-plus" /> {t("add_output")}</button>}

      <h5>{t("execution")}</h5>
      <div className="myapp-grid3">
        <Row label={t("retries")}>
          <input className="form-control input-sm" name="task-retries" type="number" min={0} max={100} disabled={ro}
                 value={data.retries} onChange={(e) => props.onChange({ retries: Number(e.target.value) })} />
        </Row>
        <Row label={t("retry_delay")}>
          <input className="form-control input-sm" name="task-retry-delay" type="number" min={0} disabled={ro}
                 value={data.retry_delay} onChange={(e) => props.onChange({ retry_delay: Number(e.target.value) })} />
        </Row>
        <Row label={t("timeout_s")}>
          <input className="form-control input-sm" name="task-timeout" type="number" min={0} disabled={ro}
                 value={data.timeout} onChange={(e) => props.onChange({ timeout: Number(e.target.value) })} />
        </Row>
      </div>
      <div className="myapp-grid3">
        <Row label={t("trigger_rule")} help={t("trigger_rule_help")}>
          <select className="form-control input-sm" name="task-trigger-rule" disabled={ro}
                  value={data.trigger_rule} onChange={(e) => props.onChange({ trigger_rule: e.target.value })}>
            {TRIGGER_RULES.map((rule) => <option key={rule} value={rule}>{rule}</option>)}
          </select>
        </Row>
      </div>
      <Row label={t("when")} help={t("when_help")}>
        <input className="form-control input-sm" name="task-when" disabled={ro} placeholder="{{ tasks.check.outputs.ok }}"
               value={data.when} onChange={(e) => props.onChange({ when: e.target.value })} />
      </Row>
      <SlicesRow data={data} ro={ro} onChange={(slices) => props.onChange({ slices })} />
      <div className="myapp-grid3">
        <Row label={t("cpu")}>
          <input className="form-control input-sm" name="task-cpu" disabled={ro} value={data.resources.cpu ?? ""}
                 placeholder={String(template?.resources?.cpu ?? "")}
                 onChange={(e) => props.onChange({ resources: { ...data.resources, cpu: e.target.value } })} />
        </Row>
        <Row label={t("memory")}>
          <input className="form-control input-sm" name="task-memory" disabled={ro} value={data.resources.memory ?? ""}
                 placeholder={String(template?.resources?.memory ?? "")}
                 onChange={(e) => props.onChange({ resources: { ...data.resources, memory: e.target.value } })} />
        </Row>
        <Row label={t("gpu")}>
          <input className="form-control input-sm" name="task-gpu" type="number" min={0} disabled={ro} value={data.resources.gpu ?? 0}
                 onChange={(e) => props.onChange({ resources: { ...data.resources, gpu: Number(e.target.value) } })} />
        </Row>
      </div>
      <h5>{t("env")}</h5>
      {Object.entries(data.env).map(([k, v], i) => (
        <div key={i} className="myapp-input-row">
          <input className="form-control input-sm" value={k} disabled={ro} placeholder="NAME"
                 onChange={(e) => props.onChange({ env: renameKey(data.env, k, e.target.value) })} />
          <input className="form-control input-sm" value={v} disabled={ro} placeholder={t("value")}
                 onChange={(e) => props.onChange({ env: { ...data.env, [k]: e.target.value } })} />
          {!ro && <button type="button" className="btn btn-link btn-xs" onClick={() => {
            const env = { ...data.env };
            delete env[k];
            props.onChange({ env });
          }}><i className="fa fa-times" /></button>}
        </div>
      ))}
      {!ro && <button type="button" className="btn btn-default btn-xs"
                      onClick={() => props.onChange({ env: { ...data.env, [`VAR${Object.keys(data.env).length + 1}`]: "" } })}>
        <i className="fa fa-plus" /> {t("add_env")}</button>}

      <WorkspacesForm task={data.name} rows={data.workspaces ?? []} project={props.meta.project}
                      kubernetes={Boolean(props.kubernetes)} errors={props.errors ?? []} readOnly={ro}
                      onChange={(workspaces) => props.onChange({ workspaces })} />

      {!ro && (
        <div className="myapp-form-actions">
          <button type="button" className="btn btn-warning btn-sm" data-testid="debug-task" disabled={!props.canDebug}
                  title={props.canDebug ? "" : t("save_first")} onClick={props.onDebug}>
            <i className="fa fa-bug" /> {t("debug_task")}
          </button>
          <button type="button" className="btn btn-danger btn-sm" data-testid="delete-task" onClick={props.onDelete}>
            <i className="fa fa-trash" /> {t("delete_task")}
          </button>
        </div>
      )}
    </div>
  );
}

function renameKey(env: Record<string, string>, from: string, to: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) out[k === from ? to : k] = v;
  return out;
}


/** The task's `slices` block (docs/rules.md R15): tick the inputs whose lists it fans out over. */
function SlicesRow({ data, ro, onChange }: { data: TaskData; ro: boolean; onChange: (s: SlicesData | null) => void }) {
  const sl: SlicesData = data.slices ?? { inputs: [], parallelism: 0, continue_on_failed: false, success_ratio: null };
  const names = [...new Set([...data.inputs.map((row) => row.name).filter(Boolean), ...sl.inputs])];
  const set = (patch: Partial<SlicesData>) => {
    const next = { ...sl, ...patch };
    onChange(next.inputs.length || next.parallelism || next.success_ratio !== null || next.continue_on_failed ? next : null);
  };
  const toggle = (name: string, on: boolean) =>
    set({ inputs: on ? [...sl.inputs.filter((x) => x !== name), name] : sl.inputs.filter((x) => x !== name) });
  return (
    <div className="myapp-slices-form" data-testid="slices-form">
      <Row label={t("slices")} help={t("slices_help")}>
        <div>
          {names.length === 0 && <span className="myapp-muted small">{t("slices_no_inputs")}</span>}
          {names.map((name) => (
            <label key={name} className="checkbox-inline">
              <input type="checkbox" name={`slice-input-${name}`} disabled={ro} checked={sl.inputs.includes(name)}
                     onChange={(e) => toggle(name, e.target.checked)} /> {name}
            </label>
          ))}
        </div>
      </Row>
      {sl.inputs.length > 0 && (
        <div className="myapp-grid3">
          <Row label={t("slices_parallelism")}>
            <input className="form-control input-sm" name="slices-parallelism" type="number" min={0} disabled={ro}
                   value={sl.parallelism} onChange={(e) => set({ parallelism: Number(e.target.value) || 0 })} />
          </Row>
          <Row label={t("slices_success_ratio")}>
            <input className="form-control input-sm" name="slices-success-ratio" type="number" min={0} max={1} step={0.05}
                   disabled={ro || sl.continue_on_failed} placeholder="1"
                   value={sl.success_ratio ?? ""}
                   onChange={(e) => set({ success_ratio: e.target.value === "" ? null : Number(e.target.value) })} />
          </Row>
          <Row label={t("slices_continue")}>
            <input type="checkbox" name="slices-continue-on-failed" disabled={ro} checked={sl.continue_on_failed}
                   onChange={(e) => set({ continue_on_failed: e.target.checked, success_ratio: e.target.checked ? null : sl.success_ratio })} />
          </Row>
        </div>
      )}
    </div>
  );
}
