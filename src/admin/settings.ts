// `npm run settings -- get|set|unset`: the bots' Bot secrets, changed safely. The server replaces
// the whole list on each write, so a change is merged into what the Project has: other
// integrations' secrets are kept as they are and shown by name only; the write carries the Project's
// version (project-secrets.ts), so a change another admin made meanwhile is kept too. Every value is checked by the
// bots' own validator before anything is written. Pure planning here; the CLI reads and writes.
import type { ProjectSetting } from '@medplum/fhirtypes';
import { checkSecret, SECRETS, secretSpec } from '../lib/secret-catalogue';
import { checkCron } from '../lib/cron';

/** What the admin asked for. */
export type SettingsRequest = { verb: 'get'; names: string[] } | { verb: 'set'; pairs: [string, string][] } | { verb: 'unset'; names: string[] };

/** Secrets whose change another command applies to the Bots. */
const APPLIED_BY_SETUP: Record<string, string> = {
  OOO_SWEEP_CRON: "the ooo-reroute Bot's cronString",
  STALE_THREAD_CRON: "the stale-thread-reminders Bot's cronString",
  BOT_TIMEOUT_SECONDS: "both Bots' timeout",
};

/** Secrets that setup applies as a Bot's cronString: checked as the server checks a cronString. */
export const CRON_SECRETS = ['OOO_SWEEP_CRON', 'STALE_THREAD_CRON'];

/**
 * Checks a value as its consumer will: the bots' own validator, and for a cron the server's check
 * (which would otherwise store the Bot's cronString and never run it).
 * @param name - Secret name.
 * @param value - Its value.
 * @returns The value to write, or why it is refused; undefined for a secret the bots do not read.
 */
export function checkSetting(name: string, value: string): { value: string } | { error: string } | undefined {
  const check = checkSecret(name, value);
  if (!check || 'error' in check) {
    return check;
  }
  if (CRON_SECRETS.includes(name)) {
    const cron = checkCron(value);
    return 'error' in cron ? cron : { value: cron.cron };
  }
  return { value };
}

/**
 * The cron secrets the bots' catalogue lets through but the server would refuse as a cronString.
 * @param secrets - The Project's secrets.
 * @returns One line per such secret, naming it (never another secret's value) and the fix.
 */
export function cronSecretProblems(secrets: ProjectSetting[]): string[] {
  return CRON_SECRETS.flatMap((name) => {
    const raw = valueOf(secrets.find((s) => s.name === name));
    const catalogue = raw === undefined ? undefined : checkSecret(name, raw);
    const cron = raw === undefined || !catalogue || 'error' in catalogue ? undefined : checkCron(raw);
    return cron && 'error' in cron ? [`secret ${name}: ${cron.error}. Fix: npm run settings -- set ${name}=<5-field cron>, then npm run setup`] : [];
  });
}

/**
 * Reads the words after `npm run settings --`.
 * @param words - Positional words.
 * @returns The request, or what is wrong with the words.
 */
export function parseSettingsWords(words: string[]): SettingsRequest | { error: string } {
  const [verb, ...rest] = words;
  if (verb === 'get') {
    return { verb, names: rest };
  }
  if (verb === 'unset') {
    return rest.length ? { verb, names: rest } : { error: 'unset takes one or more secret names' };
  }
  if (verb === 'set') {
    if (!rest.length) {
      return { error: 'set takes one or more NAME=VALUE' };
    }
    const pairs: [string, string][] = [];
    for (const word of rest) {
      const at = word.indexOf('=');
      if (at < 1) {
        return { error: `"${word.split('=')[0]}": write NAME=VALUE` };
      }
      pairs.push([word.slice(0, at), word.slice(at + 1)]);
    }
    return { verb, pairs };
  }
  return { error: verb ? `unknown action "${verb}" (get, set or unset)` : 'say get, set or unset' };
}

function valueOf(setting: ProjectSetting | undefined): string | undefined {
  return setting?.valueString ?? (setting?.valueInteger ?? setting?.valueDecimal ?? setting?.valueBoolean)?.toString();
}

/**
 * The bots' secrets as set, one line each, with what the bot makes of them; other secrets by name.
 * @param secrets - The Project's secrets.
 * @param names - Only these (default: all the bots read).
 * @returns Lines to print, or an error for a name the bots do not read.
 */
export function describeSecrets(secrets: ProjectSetting[], names: string[] = []): { lines: string[] } | { error: string } {
  const unknown = names.find((n) => !secretSpec(n));
  if (unknown) {
    return { error: `${unknown} is not a secret these bots read` };
  }
  const specs = names.length ? SECRETS.filter((s) => names.includes(s.name)) : SECRETS.filter((s) => !s.obsolete || secrets.some((x) => x.name === s.name));
  const lines = specs.map((spec) => {
    const value = valueOf(secrets.find((s) => s.name === spec.name));
    if (value === undefined) {
      return `${spec.name} (absent): ${spec.whenAbsent}`;
    }
    const check = checkSetting(spec.name, value) ?? spec.check(value);
    return 'error' in check ? `${spec.name} = ${value}  PROBLEM: ${check.error}; the bot uses: ${spec.whenAbsent}` : `${spec.name} = ${value}`;
  });
  const others = secrets.filter((s) => !secretSpec(s.name)).map((s) => s.name);
  if (!names.length && others.length) {
    lines.push(`other secrets (kept as they are, values not shown): ${others.join(', ')}`);
  }
  return { lines };
}

/** A change to the Project's secrets. */
export interface SecretsChange {
  /** The whole list to write (the server replaces it). */
  next: ProjectSetting[];
  /** What changes, one line each (values of the bots' secrets only). */
  lines: string[];
  /** Commands that apply a change to the Bots. */
  next_steps: string[];
}

/**
 * Plans a set or unset: every value checked first; nothing is written if one is refused.
 * @param current - The Project's secrets.
 * @param request - set or unset.
 * @returns The change, or why it is refused.
 */
export function planSecretsChange(current: ProjectSetting[], request: Exclude<SettingsRequest, { verb: 'get' }>): SecretsChange | { refused: string[] } {
  const refused: string[] = [];
  const lines: string[] = [];
  const steps = new Set<string>();
  let next = [...current];
  if (request.verb === 'set') {
    for (const [name, given] of request.pairs) {
      const check = checkSetting(name, given);
      if (!check) {
        refused.push(`${name} is not a secret these bots read (other integrations' secrets are not changed here)`);
      } else if ('error' in check) {
        refused.push(`${name}: ${check.error}`);
      } else {
        const value = check.value;
        const was = valueOf(current.find((s) => s.name === name));
        if (was === value) {
          lines.push(`${name} is already ${value}`);
          continue;
        }
        lines.push(`${name} = ${value}${was === undefined ? ' (was absent)' : ` (was ${was})`}`);
        next = [...next.filter((s) => s.name !== name), { name, valueString: value }];
        if (APPLIED_BY_SETUP[name]) {
          steps.add(`npm run setup (applies ${name} to ${APPLIED_BY_SETUP[name]})`);
        }
      }
    }
  } else {
    for (const name of request.names) {
      if (!secretSpec(name)) {
        refused.push(`${name} is not a secret these bots read (other integrations' secrets are not changed here)`);
      } else if (!current.some((s) => s.name === name)) {
        lines.push(`${name} is not set`);
      } else {
        lines.push(`${name} removed; the bot uses: ${secretSpec(name)?.whenAbsent}`);
        next = next.filter((s) => s.name !== name);
      }
    }
  }
  return refused.length ? { refused } : { next, lines, next_steps: [...steps] };
}
