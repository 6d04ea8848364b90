// `npm run what-if -- --since DATE --proposed FILE [options]`: the shell around the replay. Reads
// the settings and the period (only reads: nothing is written to the Project), replays, and writes
// the page or the rows, with the agreement and the totals on the terminal.
import type { MedplumClient } from '@medplum/core';
import type { ProjectSetting } from '@medplum/fhirtypes';
import { stringify } from 'csv-stringify/sync';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { connect, connectionEnv, dotEnvFile, loadDotEnv } from '../admin/connect';
import { terminalProgress } from '../sla/progress';
import type { Progress } from '../sla/progress';
import { QuotaPacer } from '../sla/quota-pacer';
import { parseWhatIfArgs } from './args';
import { whatIf } from './compare';
import type { WhatIfResult } from './compare';
import { readPeriod } from './reads';
import { renderWhatIf } from './render';
import { ROW_COLUMNS } from './rows';
import { applyChanges, botSecrets, botSettings, describeChanges } from './settings';
import type { Secrets } from './settings';

/** What the command can be given instead of the process's own (tests, the sample). */
export interface WhatIfIo {
  medplum?: MedplumClient;
  now?: Date;
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
  progress?: Progress;
  sleep?: (ms: number) => Promise<void>;
  /** The environment (tests): no .env file is read. */
  env?: NodeJS.ProcessEnv;
  readFile?: (path: string) => string;
  writeFile?: (path: string, text: string) => void;
}

/**
 * Runs a what-if.
 * @param argv - Command-line options.
 * @param io - Injected client, clock, outputs.
 * @returns The exit code: 0 done, 1 failed, 2 bad options.
 */
export async function main(argv: string[], io: WhatIfIo = {}): Promise<number> {
  const stdout = io.stdout ?? ((text: string) => process.stdout.write(text));
  const stderr = io.stderr ?? ((text: string) => process.stderr.write(text));
  const now = io.now ?? new Date();
  const parsed = parseWhatIfArgs(argv, now, { out: (t) => stdout(`${t}\n`), err: (t) => stderr(`${t}\n`) }, io.readFile);
  if ('exit' in parsed) {
    return parsed.exit;
  }
  const options = parsed.options;
  const progress = io.progress ?? (process.stderr.isTTY ? terminalProgress(process.stderr) : lineProgress(stderr));
  try {
    if (!io.medplum && !io.env) {
      const file = dotEnvFile(options.env);
      if (file) {
        loadDotEnv(file);
      }
      if (options.env) {
        stderr(`what-if: --env ${options.env}: server and credentials from ${file ?? 'the environment only (no such file)'}\n`);
      }
    }
    const medplum = io.medplum ?? (await connect(connectionEnv(io.env)));
    const current = options.current ?? (await projectSecrets(medplum));
    const proposedSecrets = applyChanges(current, options.changes);
    const settings = { current: botSettings(current), proposed: botSettings(proposedSecrets) };
    const covers = [settings.current, settings.proposed].flatMap((s) => Object.entries(s.reroute.coverage).flat());
    const pacer = new QuotaPacer(medplum, { sleep: io.sleep, onWait: (s) => progress.waiting(s) });
    const read = await readPeriod(medplum, pacer, progress, options, covers);
    progress.done();
    const result = whatIf(read, settings.current, settings.proposed, describeChanges(current, options.changes));
    const write = io.writeFile ?? writeFileSync;
    if (options.format === 'html') {
      const html = await renderWhatIf(result, now);
      mkdirSync(dirname(resolve(options.out as string)), { recursive: true });
      write(options.out as string, html);
      stdout(`${summary(result)}\npage written to ${options.out} (${Math.round(html.length / 1024)} kB)\n`);
      return 0;
    }
    const text = options.format === 'csv' ? stringify(result.rows, { header: true, columns: ROW_COLUMNS }) : `${JSON.stringify(result.rows, null, 1)}\n`;
    if (options.out) {
      write(options.out, text);
      stdout(`${summary(result)}\n${result.rows.length} rows written to ${options.out}\n`);
    } else {
      stdout(text);
      stderr(`${summary(result)}\n`);
    }
    return 0;
  } catch (err) {
    progress.done();
    stderr(`what-if failed: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

/**
 * The bots' secrets as the Project has them (`npm run settings` reads them the same way).
 * @param medplum - The client.
 * @returns Name → value.
 */
async function projectSecrets(medplum: MedplumClient): Promise<Secrets> {
  const projectId = process.env.MEDPLUM_PROJECT_ID || medplum.getProject()?.id;
  try {
    if (!projectId) {
      throw new Error('could not tell the Project of these credentials');
    }
    const admin = await medplum.get<{ project: { secret?: ProjectSetting[] } }>(`admin/projects/${projectId}`, { cache: 'no-cache' });
    return botSecrets(admin.project.secret ?? []);
  } catch (err) {
    throw new Error(
      `could not read the Project's secrets (${err instanceof Error ? err.message : String(err)}): that needs a Project admin client. ` +
        'With a read-only client, give the current settings with --current FILE (npm run settings -- get shows them)'
    );
  }
}

/**
 * The terminal's summary: the agreement, then the totals side by side.
 * @param result - The what-if.
 * @returns The text.
 */
export function summary(result: WhatIfResult): string {
  const { current, proposed } = result.totals;
  const line = (name: string, a: number, b: number): string => `  ${name.padEnd(34)} ${String(a).padStart(7)} ${String(b).padStart(9)} ${(b - a > 0 ? `+${b - a}` : String(b - a)).padStart(7)}`;
  const pct = (r: number | null): string => (r === null ? '-' : `${Math.round(100 * r)}%`);
  return [
    `what-if: ${result.threads} threads replayed, ${new Date(result.since).toISOString().slice(0, 10)} to ${new Date(result.until).toISOString().slice(0, 10)}`,
    ...result.changes.map((c) => `  change: ${c}`),
    'Trust (the current settings replayed, against what the bots did):',
    `  ${result.runsNote}`,
    ...result.trust.lines.map((l) => `  ${l}`),
    `  ${'figure'.padEnd(34)} ${'current'.padStart(7)} ${'proposed'.padStart(9)} ${'diff'.padStart(7)}`,
    line('reminders created', current.reminders_created, proposed.reminders_created),
    line('escalations', current.escalations, proposed.escalations),
    line('escalations to stat', current.escalations_to_stat, proposed.escalations_to_stat),
    line(`escalations on weekends (${result.weekendEscalations.zone})`, result.weekendEscalations.current, result.weekendEscalations.proposed),
    line('reminders open at the end', current.reminders_open_at_end, proposed.reminders_open_at_end),
    line('response Tasks opened', current.response_tasks_opened, proposed.response_tasks_opened),
    line('Tasks sent to the pool', current.to_pool, proposed.to_pool),
    line('Tasks sent to a cover', current.to_cover, proposed.to_cover),
    `  ${'first-reply breach rate'.padEnd(34)} ${pct(current.breach_rate).padStart(7)} ${pct(proposed.breach_rate).padStart(9)}`,
    'What the replay cannot know: see the page, or docs/what-if.md.',
  ].join('\n');
}

/**
 * Progress as one line per phase and per wait (a log file, CI): the export's bar is for terminals.
 * @param write - Where lines go.
 * @returns The reporter.
 */
function lineProgress(write: (text: string) => void): Progress {
  let current = '';
  return {
    phase: (name, total) => {
      current = name;
      write(`what-if: reading ${name}${total ? ` (${total})` : ''}\n`);
    },
    tick: () => undefined,
    waiting: (seconds) => write(`what-if: waiting ${seconds} s for the FHIR quota to reset (${current})\n`),
    done: () => undefined,
  };
}
