/**
 * Builds the operator console's browser app into cloud/dist/console-app/ (run by `pnpm build`, by
 * `pnpm typecheck` and by deploy/cloud/build.sh, after `tsc -b`; Node runs this file as TypeScript):
 *   index.html          the shell; it references only /console/... assets (the collector serves it for
 *                       `/` asked by a browser, `/console/` and every client-side route)
 *   app.<hash>.js       preact + uPlot + the pages, one minified ES module
 *   app.<hash>.css      uPlot's styles and the console's
 *   favicon.svg
 * Hashed names change with their content, so the collector can let browsers cache them for long.
 * Nothing is inline (the console's Content-Security-Policy allows no inline script or style) and
 * nothing is fetched from elsewhere: the console works on a network without Internet access.
 * The app is type-checked apart (`tsc -p cloud/console`, in `pnpm build` and `pnpm typecheck`).
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const outDir = join(here, '..', 'dist', 'console-app');

export async function buildConsole(opts: { quiet?: boolean } = {}): Promise<{ js: string; css: string }> {
  // Written in place and stale files removed after: a collector serving this folder while it is
  // rebuilt (or two builds at once) never sees it empty; hashed names of unchanged content stay.
  mkdirSync(outDir, { recursive: true });
  const result = await build({
    absWorkingDir: here,
    entryPoints: { app: 'src/main.tsx' },
    outdir: outDir,
    entryNames: '[name].[hash]',
    bundle: true,
    format: 'esm',
    target: ['es2022', 'chrome110', 'firefox110', 'safari16'],
    minify: true,
    jsx: 'automatic',
    jsxImportSource: 'preact',
    legalComments: 'eof',
    metafile: true,
    logLevel: 'warning',
  });
  const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
  const js = outputs.find((f) => f.endsWith('.js'));
  const css = outputs.find((f) => f.endsWith('.css'));
  if (!js || !css)
    throw new Error(`console build: expected one .js and one .css output, got ${outputs.join(', ')}`);
  writeFileSync(join(outDir, 'favicon.svg'), readFileSync(join(here, 'src', 'favicon.svg')));
  writeFileSync(
    join(outDir, 'index.html'),
    `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Fieldbeam console</title>
<link rel="icon" href="/console/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/console/${css}">
<script type="module" src="/console/${js}"></script>
</head>
<body>
<noscript>The Fieldbeam console needs JavaScript. The same data is at /console/api/ as JSON.</noscript>
<div id="app"></div>
</body>
</html>
`,
  );
  const keep = new Set([js, css, 'favicon.svg', 'index.html']);
  for (const f of readdirSync(outDir)) if (!keep.has(f)) rmSync(join(outDir, f), { force: true });
  if (!opts.quiet) {
    const size = (f: string) => {
      const bytes = readFileSync(join(outDir, f));
      return `${f} ${(bytes.length / 1024).toFixed(1)} KiB (gzip ${(gzipSync(bytes, { level: 9 }).length / 1024).toFixed(1)} KiB)`;
    };
    process.stdout.write(`console: ${size(js)}, ${size(css)} -> ${outDir}\n`);
  }
  return { js, css };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  buildConsole({ quiet: process.argv.includes('--quiet') }).catch((err: unknown) => {
    process.stderr.write(`console build failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
