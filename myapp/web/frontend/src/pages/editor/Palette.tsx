// The template palette: templates grouped by category, with search; drag one onto the canvas.
import { useMemo, useState } from "react";
import { categoryLabel, t } from "../../i18n";
import type { Template } from "./model";

export const DRAG_TYPE = "application/x-myapp-template";
export const CUSTOM_REF = "::custom";

export function Palette({ templates, disabled, onAdd }: {
  templates: Template[]; disabled: boolean; onAdd: (ref: string) => void;
}) {
  const [query, setQuery] = useState("");
  const [closed, setClosed] = useState<Record<string, boolean>>({});
  const groups = useMemo(() => {
    const q = query.trim().toLowerCase();
    const out = new Map<string, Template[]>();
    for (const tpl of templates) {
      const text = `${tpl.name} ${tpl.category ?? ""} ${tpl.description ?? ""}`.toLowerCase();
      if (q && !text.includes(q)) continue;
      const cat = tpl.category || "general";
      out.set(cat, [...(out.get(cat) ?? []), tpl]);
    }
    return [...out.entries()].sort(([a], [b]) => a.localeCompare(b));
  }, [templates, query]);
  const showCustom = !query.trim() || t("custom_task").toLowerCase().includes(query.trim().toLowerCase()) ||
    "custom image".includes(query.trim().toLowerCase());

  const item = (ref: string, title: string, subtitle: string, key: string) => (
    <div key={key} className={"myapp-palette-item" + (disabled ? " disabled" : "")} draggable={!disabled}
         data-template={ref} title={subtitle}
         onDragStart={(e) => {
           e.dataTransfer.setData(DRAG_TYPE, ref);
           e.dataTransfer.setData("text/plain", ref);
           e.dataTransfer.effectAllowed = "move";
         }}
         onDoubleClick={() => !disabled && onAdd(ref)}>
      <i className="fa fa-cube" /> <b>{title}</b>
      <div className="myapp-palette-desc">{subtitle}</div>
    </div>
  );

  return (
    <div className="myapp-palette" data-testid="palette">
      <input className="form-control input-sm" type="search" placeholder={t("search_templates")} value={query}
             data-testid="palette-search" onChange={(e) => setQuery(e.target.value)} />
      {disabled && <div className="myapp-muted small">{t("read_only_hint")}</div>}
      {groups.map(([cat, list]) => (
        <div key={cat} className="myapp-palette-group" data-category={cat}>
          <div className="myapp-palette-cat" onClick={() => setClosed({ ...closed, [cat]: !closed[cat] })}>
            <i className={"fa " + (closed[cat] ? "fa-caret-right" : "fa-caret-down")} /> {categoryLabel(cat)}
            <span className="badge">{list.length}</span>
          </div>
          {!closed[cat] && list.map((tpl) =>
            item(tpl.name, tpl.name, tpl.description || `${tpl.name}@${tpl.version}`, `${tpl.name}@${tpl.version}`))}
        </div>
      ))}
      {showCustom && (
        <div className="myapp-palette-group" data-category="custom">
          <div className="myapp-palette-cat"><i className="fa fa-caret-down" /> {t("custom")}</div>
          {item(CUSTOM_REF, t("custom_task"), t("custom_task_hint"), "custom")}
        </div>
      )}
      {groups.length === 0 && !showCustom && <div className="myapp-empty">{t("no_templates_match")}</div>}
      <div className="myapp-muted small myapp-palette-help">{t("palette_help")}</div>
    </div>
  );
}
