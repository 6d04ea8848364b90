// The bots as the server runs them: built into single CommonJS bundles with the options of
// esbuild.config.mjs (`npm run build`), then run in a fresh vmcontext-style sandbox per run, with the
// globals test/bundle/vm-sandbox.ts gives (the server's), and `Date` the simulation's clock. The
// bundles are built from `src/` (or from a patched copy of it, for a planted bug) into a cache
// directory, so the simulation never depends on a `dist/` another process is rebuilding.
import type { BotEvent, MedplumClient } from '@medplum/core';
import botLayer from '@medplum/bot-layer/package.json' with { type: 'json' };
import esbuild from 'esbuild';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import vm from 'node:vm';
import { BotConsole, vmContextGlobals, wrapBundle } from '../bundle/vm-sandbox';

export type BotName = 'ooo-reroute' | 'stale-thread-reminders';
export const BOTS: BotName[] = ['ooo-reroute', 'stale-thread-reminders'];

/** A change to a copy of the source (a planted bug): `find` must occur exactly once in `file`. */
export interface SourcePatch {
  file: string;
  find: string;
  replace: string;
}

/** Where the simulation keeps its builds (inside the project, so external packages resolve). */
export const CACHE_DIR = resolve('node_modules/.cache/sim');

/**
 * Builds both bots from a source tree, as `npm run build` does.
 * @param name - A name for the build (a directory under the cache).
 * @param patches - Changes to a copy of `src/` first (none: `src/` as it is).
 * @param ref - A git commit to take `src/` from instead of the working tree (e.g. `HEAD`).
 * @returns Paths of the two bundles.
 */
export async function buildBots(name: string, patches: SourcePatch[] = [], ref?: string): Promise<Record<BotName, string>> {
  const dir = resolve(CACHE_DIR, `${name}-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  let srcDir = resolve('src');
  if (patches.length || ref) {
    srcDir = resolve(dir, 'src');
    if (ref) {
      execFileSync('sh', ['-c', `git archive --format=tar "$0" src | tar -x -C "$1"`, ref, dir]);
    } else {
      cpSync(resolve('src'), srcDir, { recursive: true });
    }
    for (const patch of patches) {
      const path = resolve(srcDir, patch.file);
      const text = readFileSync(path, 'utf8');
      const at = text.indexOf(patch.find);
      if (at < 0 || text.indexOf(patch.find, at + 1) >= 0) {
        throw new Error(`planted patch no longer applies: ${patch.file} does not contain exactly one ${JSON.stringify(patch.find.slice(0, 60))}`);
      }
      writeFileSync(path, text.slice(0, at) + patch.replace + text.slice(at + patch.find.length));
    }
  }
  // Same options as esbuild.config.mjs: the layer's packages stay external, and the footer the
  // vmcontext runner needs.
  const external = [...Object.keys(botLayer.dependencies), '@medplum/fhirtypes'];
  const out = {} as Record<BotName, string>;
  await Promise.all(
    BOTS.map(async (bot) => {
      out[bot] = resolve(dir, `${bot}.js`);
      await esbuild.build({
        entryPoints: [resolve(srcDir, `${bot}.ts`)],
        outfile: out[bot],
        bundle: true,
        platform: 'node',
        format: 'cjs',
        target: 'es2022',
        external,
        footer: { js: 'Object.assign(exports, module.exports);' },
        logLevel: 'warning',
      });
    })
  );
  return out;
}

/** Removes a build made by buildBots. */
export function removeBuild(paths: Record<BotName, string>): void {
  rmSync(resolve(paths['ooo-reroute'], '..'), { recursive: true, force: true });
}

/** A bundle compiled once, run in a fresh context per run (as the server creates one per run). */
export class BundleRunner {
  private readonly script: vm.Script;

  constructor(
    readonly path: string,
    private readonly date: DateConstructor
  ) {
    this.script = new vm.Script(wrapBundle(readFileSync(path, 'utf8')), { filename: path });
  }

  /**
   * Runs the handler once.
   * @param medplum - The client the handler gets.
   * @param event - The bot event.
   * @param botConsole - Collects the run's log lines.
   * @returns What the handler returned (or its rejection).
   */
  run(medplum: MedplumClient, event: BotEvent, botConsole: BotConsole): Promise<unknown> {
    const sandbox = vmContextGlobals(medplum, event, botConsole, this.date);
    return this.script.runInContext(vm.createContext(sandbox)) as Promise<unknown>;
  }
}

export { BotConsole };
