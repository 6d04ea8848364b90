import type { BotEvent } from '@medplum/core';
import type { ProjectSetting } from '@medplum/fhirtypes';
import { describe, expect, test } from 'vitest';
import { readJsonObjectSecret, readJsonSecret, readListSecret, readNumberSecret, readStringSecret, RunFailedError, runTimeoutMs } from '../../src/lib/bot-runtime';

const event = (...settings: ProjectSetting[]): BotEvent =>
  ({ bot: { reference: 'Bot/b' }, contentType: 'application/json', input: {}, secrets: Object.fromEntries(settings.map((s) => [s.name, s])) }) as BotEvent;
const quiet = () => {
  const warnings: string[] = [];
  return { warnings, log: { info: () => undefined, warn: (m: string) => warnings.push(m) } };
};

describe('secrets', () => {
  test('numbers from a string, an integer or a decimal; malformed or not positive: the default, with a warning', () => {
    const { warnings, log } = quiet();
    expect(readNumberSecret(event({ name: 'A', valueString: ' 12 ' }), 'A', 5, log)).toBe(12);
    expect(readNumberSecret(event({ name: 'A', valueInteger: 7 }), 'A', 5, log)).toBe(7);
    expect(readNumberSecret(event({ name: 'A', valueDecimal: 1.5 }), 'A', 5, log)).toBe(1.5);
    expect(readNumberSecret(event(), 'A', 5, log)).toBe(5);
    expect(readNumberSecret(event({ name: 'A', valueString: '' }), 'A', 5, log)).toBe(5);
    expect(warnings).toEqual([]);
    expect(readNumberSecret(event({ name: 'A', valueString: '0' }), 'A', 5, log)).toBe(5);
    expect(readNumberSecret(event({ name: 'A', valueString: 'soon' }), 'A', 5, log)).toBe(5);
    expect(warnings).toEqual(['secret A is not a positive number; using default 5', 'secret A is not a positive number; using default 5']);
  });

  test('a list: comma-separated, trimmed, blanks dropped', () => {
    expect(readListSecret(event({ name: 'L', valueString: ' a|b , ,c|d ' }), 'L')).toEqual(['a|b', 'c|d']);
    expect(readListSecret(event(), 'L')).toEqual([]);
  });

  test('a JSON object; an array or bad JSON is the default, with a warning', () => {
    const { warnings, log } = quiet();
    expect(readJsonObjectSecret(event({ name: 'J', valueString: '{"a":1}' }), 'J', {}, log)).toEqual({ a: 1 });
    expect(readJsonObjectSecret(event({ name: 'J', valueString: '[1]' }), 'J', { d: 1 }, log)).toEqual({ d: 1 });
    expect(readJsonObjectSecret(event({ name: 'J', valueString: '{' }), 'J', { d: 1 }, log)).toEqual({ d: 1 });
    expect(readJsonObjectSecret(event(), 'J', { d: 1 }, log)).toEqual({ d: 1 });
    expect(warnings).toEqual(['secret J is not a JSON object; using the default', 'secret J is not a JSON object; using the default']);
  });

  test('a validated JSON secret: the parser decides, and its error is logged once', () => {
    const { warnings, log } = quiet();
    const parse = (v: unknown) => (typeof v === 'number' ? { n: v } : { error: 'not a number' });
    expect(readJsonSecret(event({ name: 'V', valueString: '3' }), 'V', parse, log)).toEqual({ n: 3 });
    expect(readJsonSecret(event({ name: 'V', valueString: '"x"' }), 'V', parse, log)).toBeUndefined();
    expect(readJsonSecret(event(), 'V', parse, log)).toBeUndefined();
    expect(warnings).toEqual(['secret V: not a number; using the defaults']);
  });
});

test('secrets at their edges: no secrets at all, empty strings, a boolean, null, a JSON secret set empty', () => {
  const { warnings, log } = quiet();
  const bare = { bot: { reference: 'Bot/b' }, contentType: 'application/json', input: {} } as unknown as BotEvent;
  expect(readNumberSecret(bare, 'A', 5, log)).toBe(5);
  expect(readJsonObjectSecret(bare, 'J', { d: 1 }, log)).toEqual({ d: 1 });
  expect(readListSecret(bare, 'L')).toEqual([]);
  expect(readJsonSecret(bare, 'V', () => ({ ok: true }), log)).toBeUndefined();
  expect(readJsonObjectSecret(event({ name: 'J', valueString: '' }), 'J', { d: 1 }, log)).toEqual({ d: 1 });
  expect(readJsonSecret(event({ name: 'V', valueString: '' }), 'V', () => ({ ok: true }), log)).toBeUndefined();
  expect(warnings).toEqual([]);
  // A boolean is no number of seconds; 'null' and a number are no JSON object.
  expect(readNumberSecret(event({ name: 'A', valueBoolean: true }), 'A', 5, log)).toBe(5);
  expect(readJsonObjectSecret(event({ name: 'J', valueString: 'null' }), 'J', { d: 1 }, log)).toEqual({ d: 1 });
  expect(readJsonObjectSecret(event({ name: 'J', valueString: '42' }), 'J', { d: 1 }, log)).toEqual({ d: 1 });
  expect(warnings).toHaveLength(3);
  expect(readJsonSecret(event({ name: 'V', valueString: '{' }), 'V', () => ({ ok: true }), log)).toBeUndefined();
  expect(warnings.at(-1)).toBe('secret V is not valid JSON; using the defaults');
});

test('RunFailedError carries the summary of what was done', () => {
  const err = new RunFailedError('2 write(s) failed', { created: 3 });
  expect(err).toBeInstanceOf(Error);
  expect(err).toMatchObject({ name: 'RunFailedError', message: '2 write(s) failed', summary: { created: 3 } });
});

describe('the run timeout: one setting, and the Bot\'s own timeout when a cron run passes it', () => {
  const withInput = (input: unknown, ...settings: ProjectSetting[]): BotEvent => ({ ...event(...settings), input }) as BotEvent;
  test('BOT_TIMEOUT_SECONDS, else the server default of 10 s', () => {
    const { log } = quiet();
    expect(runTimeoutMs(event({ name: 'BOT_TIMEOUT_SECONDS', valueString: '60' }), log)).toBe(60_000);
    expect(runTimeoutMs(event(), log)).toBe(10_000);
  });
  test('a cron run receives the Bot: a timeout lowered by hand wins; a higher one does not raise the plan', () => {
    const { log } = quiet();
    const secret = { name: 'BOT_TIMEOUT_SECONDS', valueString: '60' };
    expect(runTimeoutMs(withInput({ resourceType: 'Bot', timeout: 10 }, secret), log)).toBe(10_000);
    expect(runTimeoutMs(withInput({ resourceType: 'Bot', timeout: 120 }, secret), log)).toBe(60_000);
    expect(runTimeoutMs(withInput({ resourceType: 'Bot' }, secret), log)).toBe(60_000);
    expect(runTimeoutMs(withInput({ resourceType: 'Communication', timeout: 5 }, secret), log)).toBe(60_000);
  });
  test('a text secret through its validator: blank is absent, a refusal warns once', () => {
    const { warnings, log } = quiet();
    const parse = (v: string) => (v === 'ok' ? { fine: true } : { error: 'must be ok' });
    expect(readStringSecret(event({ name: 'S', valueString: 'ok' }), 'S', parse, log)).toEqual({ fine: true });
    expect(readStringSecret(event({ name: 'S', valueString: '  ' }), 'S', parse, log)).toBeUndefined();
    expect(readStringSecret(event({ name: 'S', valueString: 'no' }), 'S', parse, log)).toBeUndefined();
    expect(warnings).toEqual(['secret S: must be ok; using the default']);
  });
});
