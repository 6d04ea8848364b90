// Builds one single-file CommonJS bundle per bot listed in medplum.config.json.
//
// `node esbuild.config.mjs --run <file.ts> [args]` instead bundles a TypeScript tool (the admin
// commands, the benchmark) into node_modules/.cache and runs its exported `main(args)`.
import botLayer from '@medplum/bot-layer/package.json' with { type: 'json' };
import esbuild from 'esbuild';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const runIndex = process.argv.indexOf('--run');
if (runIndex >= 0) {
  await runTool(process.argv[runIndex + 1], process.argv.slice(runIndex + 2));
} else {
  await buildBots();
}

async function buildBots() {
  const config = JSON.parse(readFileSync(new URL('./medplum.config.json', import.meta.url), 'utf8'));
  // Medplum's bot runtime provides the packages of @medplum/bot-layer (the Lambda layer; the
  // vmcontext runner requires them from the server's own node_modules). Bundling them would ship a
  // second, possibly different, copy of @medplum/core inside every bot. The list is taken from the
  // layer's package.json, as Medplum's demo bots do; @medplum/fhirtypes is types only.
  const botLayerPackages = [...Object.keys(botLayer.dependencies), '@medplum/fhirtypes'];
  await Promise.all(
    config.bots.map((bot) =>
      esbuild.build({
        entryPoints: [bot.source],
        outfile: bot.dist,
        bundle: true,
        platform: 'node',
        format: 'cjs',
        target: 'es2022',
        external: botLayerPackages,
        // Medplum's vmcontext runner evaluates `const exports = {}; const module = {exports}; <code>`
        // and then calls `exports.handler`; esbuild's CJS output reassigns module.exports instead.
        footer: { js: 'Object.assign(exports, module.exports);' },
        logLevel: 'warning',
      })
    )
  );
  console.log(`built ${config.bots.map((b) => b.dist).join(', ')}`);
}

async function runTool(entry, args) {
  // Inside the project, so that the external packages resolve from node_modules.
  const dir = resolve('node_modules/.cache/tools');
  mkdirSync(dir, { recursive: true });
  const outfile = resolve(dir, `tool-${process.pid}.mjs`);
  try {
    await esbuild.build({
      entryPoints: [entry],
      outfile,
      bundle: true,
      platform: 'node',
      format: 'esm',
      packages: 'external',
      logLevel: 'warning',
    });
    const { main } = await import(pathToFileURL(outfile).href);
    process.exitCode = (await main(args)) ?? 0;
  } finally {
    rmSync(outfile, { force: true });
  }
}
