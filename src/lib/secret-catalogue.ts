// Every Bot secret the bots read: its meaning, its default, and its check, which is the bots' own
// validator. `npm run settings` refuses what a check refuses, `npm run status` flags it, and `npm run
// setup` writes the defaults; the bots, reading the same value, would log it and use the default.
import type { ProjectSetting } from '@medplum/fhirtypes';
import { parseBusinessHours, parseHourOfDay } from './business-hours';
import { parseResponseRules } from './response-rules';
import { parseCoding, parseOnOff } from './response-lifecycle';
import { parseCoverage } from './reroute-plan';

/** The outcome of a check: a short summary of what the value means, or what is wrong. */
export type SecretCheck = { summary: string } | { error: string };

/** One secret. */
export interface SecretSpec {
  name: string;
  bots: ('ooo-reroute' | 'stale-thread-reminders')[];
  /** Written by setup when absent; absent means the feature is off or the bot's built-in default. */
  setupDefault?: string;
  /** What the bot does when the secret is absent. */
  whenAbsent: string;
  meaning: string;
  check: (value: string) => SecretCheck;
  /** A secret that older versions read and this one ignores. */
  obsolete?: boolean;
}

const positive = (value: string): SecretCheck => {
  const n = Number(value.trim());
  return value.trim() !== '' && Number.isFinite(n) && n > 0 ? { summary: String(n) } : { error: 'not a positive number' };
};

/** Bot.timeout is an integer on the server; AWS Lambda, where hosted Medplum runs Bots, stops at 900 s. */
const timeoutSeconds = (value: string): SecretCheck => {
  const n = Number(value.trim());
  return value.trim() !== '' && Number.isInteger(n) && n >= 1 && n <= 900
    ? { summary: String(n) }
    : { error: 'must be a whole number of seconds from 1 to 900 (the server stores Bot.timeout as an integer; AWS Lambda stops at 900)' };
};

const json = (parse: (v: unknown) => object): ((value: string) => SecretCheck) => {
  return (value) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch {
      return { error: 'not valid JSON' };
    }
    const result = parse(parsed) as { error?: string };
    return result.error ? { error: result.error } : { summary: 'valid' };
  };
};

const cron = (value: string): SecretCheck =>
  /^(\S+\s+){4,5}\S+$/.test(value.trim()) && value.trim().split(/\s+/).every((f) => /^[\d*/,\-A-Za-z?]+$/.test(f))
    ? { summary: value.trim() }
    : { error: 'must be a cron expression of 5 fields, like */15 * * * *' };

const coding = (value: string): SecretCheck => {
  const result = parseCoding(value);
  return 'error' in result ? result : { summary: `${result.coding.system}|${result.coding.code}` };
};

/** The catalogue, in the order the README and `settings get` list them. */
export const SECRETS: SecretSpec[] = [
  {
    name: 'RESPONSE_TASKS',
    bots: ['ooo-reroute'],
    whenAbsent: 'off',
    meaning: 'on: open a response Task when a patient writes, complete it when the care team replies, cancel it when the thread closes',
    check: (v) => {
      const r = parseOnOff(v);
      return 'error' in r ? r : { summary: r.on ? 'on' : 'off' };
    },
  },
  {
    name: 'RESPONSE_TASK_CODE',
    bots: ['ooo-reroute'],
    whenAbsent: 'https://medplum.com/task-codes|respond-to-message',
    meaning: 'system|code of the response Tasks the lifecycle opens and completes',
    check: coding,
  },
  {
    name: 'RESPONSE_POOL',
    bots: ['ooo-reroute'],
    whenAbsent: 'no performerType',
    meaning: 'system|code written as performerType on a response Task that goes to the pool',
    check: coding,
  },
  {
    name: 'OOO_COVERAGE',
    bots: ['ooo-reroute'],
    setupDefault: '{}',
    whenAbsent: 'no covers',
    meaning: 'JSON object: provider reference -> covering provider reference, used when the cover is available',
    check: json((v) => parseCoverage(v)),
  },
  {
    name: 'OOO_SERVICE_TYPE',
    bots: ['ooo-reroute'],
    whenAbsent: 'the working hours tied to no service type (all of them when every set is tied to one)',
    meaning: 'system|code list: which of a Schedule\'s working-hours sets count',
    check: (v) => {
      const bad = v.split(',').map((s) => s.trim()).filter(Boolean).find((s) => 'error' in parseCoding(s));
      return bad ? { error: `"${bad}" must be system|code` } : { summary: v };
    },
  },
  {
    name: 'OOO_SWEEP_CRON',
    bots: ['ooo-reroute'],
    setupDefault: '*/15 * * * *',
    whenAbsent: 'setup uses */15 * * * *',
    meaning: "the sweep's schedule; setup sets it as the Bot's cronString",
    check: cron,
  },
  {
    name: 'STALE_AFTER_HOURS',
    bots: ['stale-thread-reminders'],
    setupDefault: '72',
    whenAbsent: '72',
    meaning: 'a thread no rule matches is stale when the patient side wrote last this many hours ago',
    check: positive,
  },
  {
    name: 'ESCALATE_AFTER_HOURS',
    bots: ['stale-thread-reminders'],
    setupDefault: '24',
    whenAbsent: '24',
    meaning: 'an open reminder moves one priority step up per this many hours',
    check: positive,
  },
  {
    name: 'STALE_RULES',
    bots: ['stale-thread-reminders'],
    whenAbsent: 'the default rule only',
    meaning: 'JSON response rules per category and priority, first match wins (examples/stale-rules.json)',
    check: json((v) => parseResponseRules(v, { escalateAfterHours: 24 })),
  },
  {
    name: 'BUSINESS_HOURS',
    bots: ['stale-thread-reminders'],
    whenAbsent: 'every hour counts',
    meaning: 'JSON opening hours; thresholds then count open hours only (examples/business-hours.json)',
    check: json((v) => parseBusinessHours(v)),
  },
  {
    name: 'STALE_LOOKBACK_HOURS',
    bots: ['stale-thread-reminders'],
    whenAbsent: '24',
    meaning: 'an hourly run also reads silences that crossed their threshold this many hours ago (missed runs)',
    check: positive,
  },
  {
    name: 'STALE_FULL_RECONCILE_HOUR',
    bots: ['stale-thread-reminders'],
    whenAbsent: '3',
    meaning: 'the UTC hour in which a run starts a full reconcile (every open thread, continued across runs); a run also starts one when none finished in 24 h',
    check: (v) => {
      const r = parseHourOfDay(v);
      return 'error' in r ? r : { summary: String(r.hour) };
    },
  },
  {
    name: 'STALE_THREAD_CRON',
    bots: ['stale-thread-reminders'],
    setupDefault: '0 * * * *',
    whenAbsent: 'setup uses 0 * * * *',
    meaning: "the reminders' schedule; setup sets it as the Bot's cronString",
    check: cron,
  },
  {
    name: 'BOT_TIMEOUT_SECONDS',
    bots: ['ooo-reroute', 'stale-thread-reminders'],
    setupDefault: '60',
    whenAbsent: '10',
    meaning: "both Bots' timeout; setup sets it as each Bot's timeout, and the bots plan their work within it",
    check: timeoutSeconds,
  },
  {
    name: 'OOO_WINDOW_MINUTES',
    bots: ['ooo-reroute'],
    whenAbsent: 'not read',
    meaning: 'no longer read: a provider is available at the instant, by working hours and absence blocks',
    check: () => ({ error: 'no longer read (availability is judged at the instant)' }),
    obsolete: true,
  },
];

/**
 * The spec of a secret the bots read.
 * @param name - Secret name.
 * @returns The spec, or undefined for a secret the bots do not read (another integration's).
 */
export function secretSpec(name: string): SecretSpec | undefined {
  return SECRETS.find((s) => s.name === name);
}

/**
 * Checks the value of a secret the bots read.
 * @param name - Secret name.
 * @param value - Its value.
 * @returns The check, or undefined for a secret the bots do not read.
 */
export function checkSecret(name: string, value: string): SecretCheck | undefined {
  return secretSpec(name)?.check(value);
}

/**
 * The Project's secrets the bots would not use as written.
 * @param secrets - The Project's secrets.
 * @returns One line per problem, naming the secret (never its value) and the fix.
 */
export function secretProblems(secrets: ProjectSetting[]): string[] {
  return secrets.flatMap((s) => {
    const raw = s.valueString ?? (s.valueInteger ?? s.valueDecimal ?? s.valueBoolean)?.toString();
    const check = raw === undefined ? undefined : checkSecret(s.name, raw);
    if (!check || !('error' in check) || secretSpec(s.name)?.obsolete) {
      return [];
    }
    return [`secret ${s.name}: ${check.error}. The bot ignores it and uses: ${secretSpec(s.name)?.whenAbsent}. Fix: npm run settings -- set ${s.name}=<value>`];
  });
}

/**
 * Secrets an earlier version read and this one ignores (an earlier setup may have written them):
 * worth removing, harmless to keep.
 * @param secrets - The Project's secrets.
 * @returns One note per such secret.
 */
export function obsoleteSecrets(secrets: ProjectSetting[]): string[] {
  return secrets
    .filter((s) => secretSpec(s.name)?.obsolete)
    .map((s) => `secret ${s.name} is ${secretSpec(s.name)?.meaning}; remove it with: npm run settings -- unset ${s.name}`);
}
