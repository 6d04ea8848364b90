// what-if's command line: strict, every file checked by the bots' validators before any request.
import { expect, test } from 'vitest';
import { parseWhatIfArgs } from '../../src/what-if/args';

const NOW = new Date('2026-12-01T00:00:00Z');
const files: Record<string, string> = {
  'ok.json': JSON.stringify({ STALE_AFTER_HOURS: 36, BUSINESS_HOURS: { timeZone: 'UTC', hours: { mon: [['08:00', '17:00']] } }, OOO_COVERAGE: null }),
  'bad.json': JSON.stringify({ STALE_AFTER_HOURS: '-3', NOPE: '1', BUSINESS_HOURS: { timeZone: 'Mars/Base' } }),
  'list.json': '[1]',
};
const read = (path: string): string => {
  if (!(path in files)) {
    throw Object.assign(new Error('missing'), { code: 'ENOENT' });
  }
  return files[path];
};
const parse = (...argv: string[]) => {
  const err: string[] = [];
  const result = parseWhatIfArgs(argv, NOW, { out: () => undefined, err: (t) => err.push(t) }, read);
  return { result, err: err.join('\n') };
};

test('a proposed file is read as settings would take it: numbers and JSON as text, null unsets', () => {
  const { result } = parse('--since', '2026-11-01', '--proposed', 'ok.json');
  expect(result).toMatchObject({
    options: {
      since: Date.parse('2026-11-01T00:00:00Z'),
      until: NOW.getTime(),
      from: Date.parse('2026-10-18T00:00:00Z'),
      changes: { STALE_AFTER_HOURS: '36', BUSINESS_HOURS: '{"timeZone":"UTC","hours":{"mon":[["08:00","17:00"]]}}', OOO_COVERAGE: null },
      format: 'html',
      out: 'reports/what-if-report.html',
    },
  });
});

test('every refused value is named, with the validator\'s reason, and nothing runs', () => {
  const { result, err } = parse('--since', '2026-11-01', '--proposed', 'bad.json');
  expect(result).toEqual({ exit: 2 });
  expect(err).toContain('STALE_AFTER_HOURS: not a positive number');
  expect(err).toContain('NOPE is not a secret these bots read');
  expect(err).toContain('BUSINESS_HOURS: timeZone "Mars/Base" is not an IANA time zone');
});

test('mistakes are exit code 2: unknown flag, missing file, no --since, a period that ends before it starts, a bad format', () => {
  expect(parse('--since', '2026-11-01', '--proposed', 'ok.json', '--bogus').result).toEqual({ exit: 2 });
  expect(parse('--since', '2026-11-01', '--proposed', 'none.json').err).toContain('--proposed none.json: no such file');
  expect(parse('--proposed', 'ok.json').err).toContain('--since is required');
  expect(parse('--since', '2026-11-01', '--until', '2026-10-01', '--proposed', 'ok.json').result).toEqual({ exit: 2 });
  expect(parse('--since', '2026-11-01', '--proposed', 'list.json').err).toContain('must be a JSON object');
  expect(parse('--since', '2026-11-01', '--proposed', 'ok.json', '--format', 'xml').err).toContain('--format must be html, csv or json');
  expect(parse('--since', '2026-11-01T00:00:00', '--proposed', 'ok.json').err).toContain('not an ISO 8601 date');
});
