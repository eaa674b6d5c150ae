// Entry of the bundle: mount the page named by the shell's data-page, after loading who is signed in.
import { createRoot } from "react-dom/client";
import { ComponentType, useEffect, useState } from "react";
import "@xyflow/react/dist/style.css";
import "./styles.css";
import { loadMe } from "./api";
import { setLocale, t } from "./i18n";
import { ErrorBox, Toasts } from "./ui";
import { PipelinesPage } from "./pages/Pipelines";
import { EditorPage } from "./pages/editor/Editor";
import { RunsPage } from "./pages/Runs";
import { RunPage } from "./pages/run/RunPage";
import { SchedulesPage } from "./pages/Schedules";
import { TemplatesPage } from "./pages/Templates";
import { ReviewPage } from "./pages/Review";
import { VersionsPage } from "./pages/Versions";
import { ProjectsPage } from "./pages/Projects";
import { GridPage } from "./pages/Grid";

const PAGES: Record<string, ComponentType<any>> = {
  pipelines: PipelinesPage,
  editor: EditorPage,
  runs: RunsPage,
  run: RunPage,
  schedules: SchedulesPage,
  templates: TemplatesPage,
  review: ReviewPage,
  versions: VersionsPage,
  projects: ProjectsPage,
  grid: GridPage,
};

function App({ page, props }: { page: string; props: Record<string, unknown> }) {
  const [ready, setReady] = useState(false);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    loadMe().then(() => setReady(true), setError);
  }, []);
  const Page = PAGES[page];
  if (error) return <ErrorBox error={error} />;
  if (!ready) return <div className="myapp-loading">{t("loading")}</div>;
  if (!Page) return <ErrorBox error={new Error(`unknown page ${page}`)} />;
  return (
    <>
      <Page {...props} />
      <Toasts />
    </>
  );
}

const root = document.getElementById("myapp-root");
if (root) {
  setLocale(root.dataset.locale || "en");
  const props = JSON.parse(root.dataset.props || "{}");
  createRoot(root).render(<App page={root.dataset.page || ""} props={props} />);
}
