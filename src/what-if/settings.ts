// The two sets of settings a what-if compares: the Project's current secrets, and those with the
// proposed changes. A proposed file is checked by the validators `npm run settings` uses
// (checkSecret), and both sets are turned into the bots' configurations by the bots' own readers
// (readStaleConfig, readRerouteConfig), so the replay decides with exactly what a bot would use.
import type { BotEvent } from '@medplum/core';
import type { ProjectSetting } from '@medplum/fhirtypes';
import type { BotLog } from '../lib/bot-runtime';
import { checkSecret, secretSpec } from '../lib/secret-catalogue';
import { readRerouteConfig } from '../realtime/settings';
import type { RerouteConfig } from '../realtime/settings';
import { readStaleConfig } from '../stale/settings';
import type { StaleConfig } from '../stale/settings';

/** Secret name → value, as the bots read them (strings). */
export type Secrets = Record<string, string>;

/** A proposed change: a value to set, or null to remove the secret (the bot's default then). */
export type Changes = Record<string, string | null>;

/** Secrets whose value the replay does not use: it runs the scheduled bots when they ran (else hourly), with either settings. */
export const NOT_REPLAYED: Record<string, string> = {
  STALE_THREAD_CRON: 'the replay runs the reminders when they ran (every hour without their run history)',
  OOO_SWEEP_CRON: 'the replay runs the sweep when it ran (every hour without its run history)',
  STALE_LOOKBACK_HOURS: 'the replay decides from every thread at every run',
  STALE_FULL_RECONCILE_HOUR: 'the replay decides from every thread at every hour',
  BOT_TIMEOUT_SECONDS: 'the replay has no deadline',
};

/** What the bots decide with: the stale bot's and the real-time bot's configurations. */
export interface BotSettings {
  secrets: Secrets;
  stale: StaleConfig;
  reroute: RerouteConfig;
  /** Secrets set but refused by the bots' readers (each bot logs it and uses its default). */
  ignored: string[];
}

/**
 * Reads a proposed-settings file's content: a JSON object of secret name → value, in the form
 * `npm run settings -- set NAME=VALUE` takes (a string; a number or a JSON object or array is
 * taken as its JSON text), or null to unset. Every value is checked by the bots' own validator.
 * @param value - The parsed JSON.
 * @returns The changes, or every problem found (naming the secret).
 */
export function parseChanges(value: unknown): { changes: Changes } | { errors: string[] } {
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    return { errors: ['must be a JSON object of secret names to values, like {"STALE_AFTER_HOURS": "36"}'] };
  }
  const changes: Changes = {};
  const errors: string[] = [];
  for (const [name, raw] of Object.entries(value)) {
    if (!secretSpec(name)) {
      errors.push(`${name} is not a secret these bots read`);
      continue;
    }
    if (raw === null) {
      changes[name] = null;
      continue;
    }
    const text = typeof raw === 'string' ? raw : typeof raw === 'number' || typeof raw === 'boolean' ? String(raw) : JSON.stringify(raw);
    const check = checkSecret(name, text);
    if (check && 'error' in check) {
      errors.push(`${name}: ${check.error}`);
      continue;
    }
    changes[name] = text;
  }
  return errors.length ? { errors } : { changes };
}

/**
 * The secrets with changes applied.
 * @param current - Current secrets.
 * @param changes - Proposed changes.
 * @returns The proposed secrets.
 */
export function applyChanges(current: Secrets, changes: Changes): Secrets {
  const next = { ...current };
  for (const [name, value] of Object.entries(changes)) {
    if (value === null) {
      delete next[name];
    } else {
      next[name] = value;
    }
  }
  return next;
}

/**
 * The bots' secrets among a Project's (other integrations' secrets are left out, never shown).
 * @param settings - Project.secret.
 * @returns Name → value of the secrets the bots read.
 */
export function botSecrets(settings: ProjectSetting[]): Secrets {
  const secrets: Secrets = {};
  for (const s of settings) {
    const value = s.valueString ?? (s.valueInteger ?? s.valueDecimal ?? s.valueBoolean)?.toString();
    if (value !== undefined && secretSpec(s.name)) {
      secrets[s.name] = value;
    }
  }
  return secrets;
}

/**
 * The bots' configurations for a set of secrets, read by the bots' own readers.
 * @param secrets - Name → value.
 * @returns The settings, with the secrets the readers refused.
 */
export function botSettings(secrets: Secrets): BotSettings {
  const ignored: string[] = [];
  const log: BotLog = { info: () => undefined, warn: (m) => ignored.push(m.replace(/^secret /, '')) };
  const event = {
    bot: { reference: 'Bot/what-if' },
    contentType: 'application/fhir+json',
    input: undefined,
    secrets: Object.fromEntries(Object.entries(secrets).map(([name, valueString]) => [name, { name, valueString }])),
  } as unknown as BotEvent;
  return { secrets, stale: readStaleConfig(event, log), reroute: readRerouteConfig(event, log), ignored: [...new Set(ignored)] };
}

/**
 * What changes, one line per secret, and which changes the replay cannot show.
 * @param current - Current secrets.
 * @param changes - Proposed changes.
 * @returns Lines for the terminal and the page.
 */
export function describeChanges(current: Secrets, changes: Changes): string[] {
  return Object.entries(changes).map(([name, value]) => {
    const was = current[name] === undefined ? 'absent' : current[name];
    const now = value === null ? `removed (the bot uses: ${secretSpec(name)?.whenAbsent})` : value;
    const note = NOT_REPLAYED[name] ? `; not replayed: ${NOT_REPLAYED[name]}` : '';
    return `${name}: ${was} -> ${now}${note}`;
  });
}
