// Bundle the pages (src/main.tsx) into myapp/web/static/dist/app.js + app.css with esbuild.
// `npm run build` (one shot, minified) or `npm run watch`. Nothing is fetched at run time:
// React, React Flow and dagre are all inside the bundle.
import * as esbuild from "esbuild";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const watch = process.argv.includes("--watch");
const options = {
  entryPoints: { app: path.join(here, "src", "main.tsx") },
  outdir: path.join(here, "..", "static", "dist"),
  bundle: true,
  minify: !watch,
  sourcemap: watch ? "inline" : false,
  format: "iife",
  target: ["chrome110", "firefox110", "safari16"],
  jsx: "automatic",
  loader: { ".svg": "dataurl" },
  define: { "process.env.NODE_ENV": watch ? '"development"' : '"production"' },
  legalComments: "none",
  logLevel: "info",
};

if (watch) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
} else {
  await esbuild.build(options);
}
