// `npm run bench`: bundles test/bench/bench.ts with esbuild (the harness is TypeScript) and runs it.
// Not part of `npm test`.
import esbuild from 'esbuild';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

// Inside the project, so that the external packages resolve from node_modules.
const dir = fileURLToPath(new URL('../../node_modules/.cache/bench/', import.meta.url));
mkdirSync(dir, { recursive: true });
const outfile = join(dir, `bench-${process.pid}.mjs`);
try {
  await esbuild.build({
    entryPoints: [fileURLToPath(new URL('./bench.ts', import.meta.url))],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    packages: 'external',
    logLevel: 'warning',
  });
  const { main } = await import(pathToFileURL(outfile).href);
  await main(process.argv.slice(2));
} finally {
  rmSync(outfile, { force: true });
}
