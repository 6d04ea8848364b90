// What every bot needs from its runtime: configuration from Bot secrets, and id-only logging.
import type { BotEvent } from '@medplum/core';
import type { ProjectSetting } from '@medplum/fhirtypes';

/**
 * One-line logs prefixed with the bot name. Callers pass ids, counts and codes only: the server
 * stores console output in the run's AuditEvent, so message text or names must never reach it.
 */
export interface BotLog {
  info(message: string): void;
  warn(message: string): void;
}

/**
 * Creates a logger for a bot.
 * @param botName - Prefix for every line.
 * @returns The logger.
 */
export function createBotLog(botName: string): BotLog {
  // Only console.log: Medplum's vmcontext sandbox gives bots a console with `log` alone
  // (console.warn there throws "console.warn is not a function").
  return {
    info: (message) => console.log(`[${botName}] ${message}`),
    warn: (message) => console.log(`[${botName}] WARN ${message}`),
  };
}

function rawSecret(setting: ProjectSetting | undefined): string | number | boolean | undefined {
  return setting?.valueString ?? setting?.valueInteger ?? setting?.valueDecimal ?? setting?.valueBoolean;
}

/**
 * Reads a positive number from a Bot secret, falling back to a default (with a warning) when the
 * secret is set but malformed.
 * @param event - The bot event.
 * @param name - Secret name.
 * @param defaultValue - Used when absent or malformed.
 * @param log - Where the warning goes.
 * @returns The value.
 */
export function readNumberSecret(event: BotEvent, name: string, defaultValue: number, log: BotLog): number {
  const raw = rawSecret(event.secrets?.[name]);
  if (raw === undefined || raw === '') {
    return defaultValue;
  }
  const value = typeof raw === 'number' ? raw : Number(String(raw).trim());
  if (!Number.isFinite(value) || value <= 0) {
    log.warn(`secret ${name} is not a positive number; using default ${defaultValue}`);
    return defaultValue;
  }
  return value;
}

/**
 * Reads a JSON object from a Bot secret, falling back to a default (with a warning) when malformed.
 * @param event - The bot event.
 * @param name - Secret name.
 * @param defaultValue - Used when absent or malformed.
 * @param log - Where the warning goes.
 * @returns The parsed object.
 */
export function readJsonObjectSecret<T extends object>(
  event: BotEvent,
  name: string,
  defaultValue: T,
  log: BotLog
): T {
  const raw = rawSecret(event.secrets?.[name]);
  if (raw === undefined || raw === '') {
    return defaultValue;
  }
  try {
    const value = JSON.parse(String(raw));
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      return value as T;
    }
  } catch {
    // fall through to the warning
  }
  log.warn(`secret ${name} is not a JSON object; using the default`);
  return defaultValue;
}

/**
 * Reads a comma-separated list from a Bot secret (blank items dropped).
 * @param event - The bot event.
 * @param name - Secret name.
 * @returns The items; empty when absent.
 */
export function readListSecret(event: BotEvent, name: string): string[] {
  const raw = rawSecret(event.secrets?.[name]);
  return raw === undefined ? [] : String(raw).split(',').map((s) => s.trim()).filter(Boolean);
}

/**
 * Reads a JSON secret through a validator. Absent: undefined. Not JSON, or refused by the validator:
 * one warning naming what is wrong, and undefined, so the caller uses its defaults rather than stop.
 * @param event - The bot event.
 * @param name - Secret name.
 * @param parse - Checks the parsed JSON; returns `{ error }` when it is wrong.
 * @param log - Where the warning goes.
 * @returns The validator's result, or undefined.
 */
export function readJsonSecret<R extends object>(
  event: BotEvent,
  name: string,
  parse: (value: unknown) => R | { error: string },
  log: BotLog
): R | undefined {
  const raw = rawSecret(event.secrets?.[name]);
  if (raw === undefined || raw === '') {
    return undefined;
  }
  let value: unknown;
  try {
    value = JSON.parse(String(raw));
  } catch {
    log.warn(`secret ${name} is not valid JSON; using the defaults`);
    return undefined;
  }
  const result = parse(value);
  if ('error' in result) {
    log.warn(`secret ${name}: ${result.error}; using the defaults`);
    return undefined;
  }
  return result;
}

/**
 * Reads a text secret through a validator. Absent or blank: undefined. Refused: one warning naming
 * what is wrong, and undefined, so the caller uses its default.
 * @param event - The bot event.
 * @param name - Secret name.
 * @param parse - Checks the text; returns `{ error }` when it is wrong.
 * @param log - Where the warning goes.
 * @returns The validator's result, or undefined.
 */
export function readStringSecret<R extends object>(
  event: BotEvent,
  name: string,
  parse: (value: string) => R | { error: string },
  log: BotLog
): R | undefined {
  const raw = rawSecret(event.secrets?.[name]);
  if (raw === undefined || String(raw).trim() === '') {
    return undefined;
  }
  const result = parse(String(raw));
  if ('error' in result) {
    log.warn(`secret ${name}: ${result.error}; using the default`);
    return undefined;
  }
  return result;
}

/**
 * How long this run may take, in milliseconds. `BOT_TIMEOUT_SECONDS` is the one setting (setup
 * applies it as each Bot's `timeout`); a cron run also receives the Bot itself, whose `timeout` is
 * what the server enforces, so the smaller of the two wins: a timeout lowered by hand is respected.
 * @param event - The bot event.
 * @param log - Where a malformed secret is reported.
 * @returns Milliseconds.
 */
export function runTimeoutMs(event: BotEvent, log: BotLog): number {
  const secret = readNumberSecret(event, 'BOT_TIMEOUT_SECONDS', DEFAULT_BOT_TIMEOUT_SECONDS, log);
  const input = event.input as { resourceType?: string; timeout?: number } | undefined;
  const enforced = input?.resourceType === 'Bot' && typeof input.timeout === 'number' && input.timeout > 0 ? input.timeout : Infinity;
  return Math.min(secret, enforced) * 1000;
}

/** The server's default Bot timeout, in seconds. */
export const DEFAULT_BOT_TIMEOUT_SECONDS = 10;

/** A run that did its work but some writes failed: the server records a failed run; the summary says what was done. */
export class RunFailedError<S> extends Error {
  readonly summary: S;

  constructor(message: string, summary: S) {
    super(message);
    this.name = 'RunFailedError';
    this.summary = summary;
  }
}
