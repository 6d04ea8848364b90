// `npm run test:sim -- [--seed N] [--days D] [--providers P] [--trace THREAD] [--until STEP] [--ref COMMIT] [--planted [--invariant N]] [--all]`
//
// Runs the simulated clinic (see docs/testing.md, "The simulation"): prints the figures, then each
// violation with the seed, simulated time, step, invariant and thread, the command that replays it,
// and the thread's short trace (what people and bots did to it, step by step). Exit 1 on a violation
// not listed in test/sim/known-failures.ts (`--all` counts those too). `--planted` runs the planted
// bugs instead and prints the table of which invariant caught each, at which step.
import { execFileSync } from 'node:child_process';
import { simulate } from './driver';
import type { StepInfo } from './oracle/invariants';
import type { SimResult } from './driver';
import { isKnown, KNOWN_FAILURES } from './known-failures';
import { INVARIANTS } from './invariant-names';
import { PLANTED_BUGS, plantedTable } from './planted';

interface Args {
  seed: number;
  days: number;
  providers?: number;
  trace?: string;
  until?: number;
  planted: boolean;
  all: boolean;
  ref?: string;
  invariant?: number;
}

function parse(argv: string[]): Args {
  const args: Args = { seed: 1, days: 30, planted: false, all: false };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) {
        throw new Error(`${flag} needs a value`);
      }
      return v;
    };
    const number = (): number => {
      const v = Number(value());
      if (!Number.isInteger(v) || v < 0) {
        throw new Error(`${flag} needs a whole number`);
      }
      return v;
    };
    switch (flag) {
      case '--seed':
        args.seed = number();
        break;
      case '--days':
        args.days = Math.max(1, number());
        break;
      case '--providers':
        args.providers = Math.min(40, Math.max(10, number()));
        break;
      case '--trace':
        args.trace = value()
          .split(',')
          .map((t) => t.replace(/^(?!Communication\/)/, 'Communication/'))
          .join(',');
        break;
      case '--until':
        args.until = number();
        break;
      case '--planted':
        args.planted = true;
        break;
      case '--all':
        args.all = true;
        break;
      case '--ref':
        args.ref = value();
        break;
      case '--invariant':
        args.invariant = number();
        break;
      default:
        throw new Error(`unknown argument ${flag} (use --seed, --days, --providers, --trace, --until, --ref, --planted [--invariant N], --all)`);
    }
  }
  return args;
}

export async function main(argv: string[]): Promise<number> {
  let args: Args;
  try {
    args = parse(argv);
  } catch (err) {
    console.error(String((err as Error).message));
    return 2;
  }
  if (args.planted) {
    const rows = await plantedTable({ log: (line) => console.log(line), ref: args.ref, bugs: PLANTED_BUGS.filter((b) => args.invariant === undefined || b.invariant === args.invariant) });
    return rows.every((r) => r.caughtAt !== undefined) ? 0 : 1;
  }
  const source = args.ref ? `src/ at ${args.ref} (${execFileSync('git', ['rev-parse', '--short', args.ref]).toString().trim()})` : 'src/ of the working tree';
  console.log(`bots built from ${source}`);
  const began = performance.now();
  // One line a simulated day on stderr, for the month's ten minutes.
  let day = -1;
  let found = 0;
  const debugRuns = new Set((process.env.SIM_DEBUG_RUNS ?? '').split(',').filter(Boolean).map(Number));
  const onStep = (step: StepInfo, violations: unknown[]): void => {
    found += violations.length;
    for (const { run } of step.runs) {
      if (debugRuns.has(run.id)) {
        console.error(`run ${run.id} ${run.kind} ${run.trigger} at step ${step.n}, quota at start ${run.quotaAtStart}: ${JSON.stringify(run.summary)}\n    ${run.lines.join('\n    ')}\n    ${run.requests.map((r) => `${r.key} ${r.points} ${r.status ?? 'fault'}`).join(', ')}`);
      }
    }
    const d = Math.floor(step.at / 86_400_000);
    if (args.days > 3 && d !== day) {
      day = d;
      console.error(`  ${new Date(step.at).toISOString().slice(0, 10)}: step ${step.n}, ${found} violations, ${((performance.now() - began) / 1000).toFixed(0)} s`);
    }
  };
  const result = await simulate({ seed: args.seed, days: args.days, providers: args.providers, until: args.until, ref: args.ref, onStep });
  const seconds = (performance.now() - began) / 1000;
  printFigures(result, seconds);
  const replay = (thread?: string): string =>
    `npm run test:sim -- --seed ${args.seed} --days ${args.days}${args.providers ? ` --providers ${args.providers}` : ''}${args.ref ? ` --ref ${args.ref}` : ''}${thread ? ` --trace ${thread.split('/')[1]}` : ''}`;
  const fresh = result.violations.filter((v) => args.all || !isKnown(v));
  const known = result.violations.length - fresh.length;
  for (const v of result.violations) {
    const tag = isKnown(v) && !args.all ? ' (known, test/sim/known-failures.ts)' : '';
    console.log(
      `\nVIOLATION of invariant ${v.invariant} (${INVARIANTS[v.invariant]}) ${v.code}${tag}${v.occurrences > 1 ? ` (${v.occurrences} times; the first shown)` : ''}\n  seed ${args.seed}, simulated time ${new Date(v.at).toISOString()}, step ${v.step}${v.thread ? `, thread ${v.thread}` : ''}\n  ${v.detail}\n  replay: ${replay(v.thread)}`
    );
  }
  const first = fresh[0];
  for (const traced of args.trace ? args.trace.split(',') : first?.thread ? [first.thread] : []) {
    // The thread's own story, from the bots' first run to the violation (its history before is summed up).
    const start = new Date(result.clinic.start).toISOString();
    const upTo = args.trace ? Infinity : (first?.step ?? Infinity);
    const all = result.traces.get(traced) ?? [];
    const before = all.filter((l) => l < start).length;
    const lines = all.filter((l) => l >= start && Number(/\[step (\d+)\]/.exec(l)?.[1] ?? 0) <= upTo);
    console.log(`\nTrace of ${traced}${upTo < Infinity ? ` up to step ${upTo}` : ''}${before ? ` (${before} messages before the run not shown)` : ''}:`);
    for (const line of lines) {
      console.log(`  ${line}`);
    }
  }
  const byCode = new Map<string, number>();
  for (const v of result.violations) {
    byCode.set(`${v.invariant} ${v.code}`, (byCode.get(`${v.invariant} ${v.code}`) ?? 0) + 1);
  }
  console.log(`\nviolations: ${result.violations.length} (${known} of known kinds) ${[...byCode].map(([k, n]) => `[${k}: ${n}]`).join(' ')}`);
  const unseen = KNOWN_FAILURES.filter((k) => !result.violations.some((v) => v.invariant === k.invariant && v.code === k.code));
  if (unseen.length) {
    console.log(`known failures not seen in this run: ${unseen.map((k) => `${k.invariant} ${k.code}`).join(', ')}`);
  }
  return fresh.length ? 1 : 0;
}

function printFigures(result: SimResult, seconds: number): void {
  const f = result.figures;
  const faults = Object.entries(f.faults).map(([k, n]) => `${k} ${n}`).join(', ');
  console.log(
    [
      `seed ${f.seed}, ${f.days} simulated days from ${new Date(result.clinic.start).toISOString()}, ${f.providers} providers in ${f.zones.join(', ')}, business hours ${f.businessHours ? 'set' : 'not set'}`,
      `threads ${f.threads} (opened in the run), messages ${f.messages}, steps ${f.steps}, person acts ${f.personActs}`,
      `runs: events ${f.runs.event}, sweeps ${f.runs.sweep}, reminder runs ${f.runs.stale}; failed ${f.runsFailed}`,
      `faults injected: ${faults}`,
      `response Tasks ${f.tasks.response}, reminders ${f.tasks.reminders}; points spent: ooo-reroute ${f.pointsSpent['ooo-reroute']}, stale-thread-reminders ${f.pointsSpent['stale-thread-reminders']}`,
      `invariants checked ${f.checks}, violations ${f.violations}; ${seconds.toFixed(1)} s`,
    ].join('\n')
  );
}
