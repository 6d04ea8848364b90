import type { Patient } from '@medplum/fhirtypes';
import { describe, expect, test, vi } from 'vitest';
import { terminalProgress } from '../../src/sla/progress';
import { QuotaPacer, resetSeconds } from '../../src/sla/quota-pacer';
import { createServerMock } from '../harness/server-mock';

describe('QuotaPacer', () => {
  test('waits for the announced reset when the quota left cannot cover a request, then goes on', { timeout: 5_000 }, async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-11-27T12:00:00Z'));
    try {
      const server = createServerMock({ quota: { perCaller: 150 } });
      const waits: number[] = [];
      const pacer = new QuotaPacer(server.medplum, {
        sleep: async (ms) => {
          vi.setSystemTime(new Date(Date.now() + ms));
        },
        onWait: (s) => waits.push(s),
      });
      await pacer.run(100, () => server.medplum.createResource<Patient>({ resourceType: 'Patient' }));
      vi.setSystemTime(new Date('2026-11-27T12:00:20Z'));
      // 50 left, 100 needed: wait the 40 s announced (+1 for rounding), once; the stale header is not read again.
      await pacer.run(100, () => server.medplum.createResource<Patient>({ resourceType: 'Patient' }));
      expect(waits).toEqual([41]);
      expect(server.requests.map((r) => (r.status ?? 500) < 300)).toEqual([true, true]);
      expect(pacer.left()?.points).toBe(50);
    } finally {
      vi.useRealTimers();
    }
  });

  test('a 429 anyway (another caller spent the quota): waits, then retries', { timeout: 5_000 }, async () => {
    const server = createServerMock();
    server.faults.push({ match: /^POST Patient$/, status: 429, times: 3 });
    const waits: number[] = [];
    const pacer = new QuotaPacer(server.medplum, { sleep: async () => undefined, onWait: (s) => waits.push(s) });
    await pacer.run(100, () => server.medplum.createResource<Patient>({ resourceType: 'Patient' }));
    expect(waits).toHaveLength(1);
    expect(await server.searchAll('Patient')).toHaveLength(1);
  });

  test('gives up after maxWaits, and never retries other errors', { timeout: 5_000 }, async () => {
    const server = createServerMock();
    server.faults.push({ match: /^POST Patient$/, status: 429, times: Infinity });
    const pacer = new QuotaPacer(server.medplum, { sleep: async () => undefined, maxWaits: 2 });
    await expect(pacer.run(100, () => server.medplum.createResource<Patient>({ resourceType: 'Patient' }))).rejects.toThrow('Too Many Requests');
    server.faults.length = 0;
    server.faults.push({ match: /^POST Patient$/, status: 503, times: Infinity });
    let calls = 0;
    await expect(pacer.run(100, () => (calls++, server.medplum.createResource<Patient>({ resourceType: 'Patient' })))).rejects.toThrow();
    expect(calls).toBe(1);
  });

  test('the reset time from the header, else from the 429 diagnostics', () => {
    const server = createServerMock();
    const err = { outcome: { resourceType: 'OperationOutcome', issue: [{ diagnostics: JSON.stringify({ msBeforeNext: 12_000 }) }] } };
    expect(resetSeconds(server.medplum, err)).toBe(12);
    expect(resetSeconds(server.medplum, new Error('x'))).toBe(60);
    expect(resetSeconds(server.medplum, undefined)).toBe(60);
    expect(resetSeconds(server.medplum, { outcome: { resourceType: 'OperationOutcome', issue: [{ diagnostics: 'slow down' }] } })).toBe(60);
    expect(resetSeconds(server.medplum, { outcome: { resourceType: 'OperationOutcome', issue: [{ diagnostics: '{}' }] } })).toBe(60);
  });

  test('once the client has seen a RateLimit header, the header says', { timeout: 5_000 }, async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-11-27T12:00:00Z'));
    try {
      const server = createServerMock({ quota: { perCaller: 150 } });
      await server.medplum.createResource<Patient>({ resourceType: 'Patient' });
      const err = { outcome: { resourceType: 'OperationOutcome', issue: [{ diagnostics: JSON.stringify({ msBeforeNext: 12_000 }) }] } };
      expect(resetSeconds(server.medplum, err)).toBe(60);
      // A pacer made after that request already knows what is left.
      expect(new QuotaPacer(server.medplum).left()).toMatchObject({ points: 50 });
    } finally {
      vi.useRealTimers();
    }
  });

  test('exactly enough left: no wait', { timeout: 5_000 }, async () => {
    const server = createServerMock({ quota: { perCaller: 150 } });
    const waits: number[] = [];
    const pacer = new QuotaPacer(server.medplum, { sleep: async () => undefined, onWait: (s) => waits.push(s) });
    await pacer.run(100, () => server.medplum.createResource<Patient>({ resourceType: 'Patient' }));
    await pacer.run(50, () => server.medplum.searchResources('Patient'));
    expect(waits).toEqual([]);
  });

  test('maxWaits 0: never waits, the 429 is thrown', { timeout: 5_000 }, async () => {
    const server = createServerMock({ quota: { perCaller: 150 } });
    const waits: number[] = [];
    const pacer = new QuotaPacer(server.medplum, { sleep: async () => undefined, onWait: (s) => waits.push(s), maxWaits: 0 });
    await pacer.run(100, () => server.medplum.createResource<Patient>({ resourceType: 'Patient' }));
    await expect(pacer.run(100, () => server.medplum.createResource<Patient>({ resourceType: 'Patient' }))).rejects.toThrow('Too Many Requests');
    expect(waits).toEqual([]);
  });

  test('by default it sleeps for real: the announced seconds plus one', { timeout: 5_000 }, async () => {
    vi.useFakeTimers();
    try {
      const pacer = new QuotaPacer(createServerMock().medplum);
      let done = false;
      const waiting = pacer.wait(3).then(() => (done = true));
      await vi.advanceTimersByTimeAsync(3_999);
      expect(done).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      await waiting;
      expect(done).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('progress', () => {
  test('not a terminal: one line per phase and per wait, none per item', () => {
    const lines: string[] = [];
    const stream = { isTTY: false, write: (t: string) => lines.push(t) } as unknown as NodeJS.WriteStream;
    const progress = terminalProgress(stream);
    progress.phase('Tasks', 0);
    progress.phase('histories', 10_000);
    for (let i = 0; i < 10_000; i += 100) {
      progress.tick(i);
    }
    progress.waiting(41);
    progress.done();
    expect(lines).toEqual(['sla-export: reading Tasks\n', 'sla-export: reading histories (10000)\n', 'sla-export: waiting 41 s for the FHIR quota to reset (histories)\n']);
  });
});

/** Progress on a fake terminal, recording each write. */
function onTerminal(): { written: string[]; progress: ReturnType<typeof terminalProgress> } {
  const written: string[] = [];
  const stream = { isTTY: true, columns: 160, write: (t: string) => written.push(t), on: () => undefined, removeListener: () => undefined } as unknown as NodeJS.WriteStream;
  return { written, progress: terminalProgress(stream) };
}

test('progress on a terminal: one redrawn bar per phase, with the wait on it', () => {
  const { written, progress } = onTerminal();
  progress.phase('histories', 10);
  progress.tick(5);
  progress.waiting(41);
  progress.done();
  const text = written.join('');
  expect(text).toContain('histories [');
  expect(text).toContain('5/10 waiting 41 s for the FHIR quota to reset');
  expect(text).not.toContain('\n\n');
});

test('progress on a terminal: each phase ends its bar on its own line and gives the cursor back; a tick clears the wait', () => {
  const { written, progress } = onTerminal();
  progress.phase('Tasks', 0);
  progress.tick(3);
  progress.phase('histories', 10);
  progress.waiting(41);
  progress.tick(5);
  progress.done();
  progress.done();
  const count = (text: string): number => written.filter((t) => t === text).length;
  expect([count('\n'), count('\u001b[?25l'), count('\u001b[?25h')]).toEqual([2, 2, 2]);
  const renders = written.filter((t) => /^\w+ +\[/.test(t));
  expect(renders[0]).toMatch(/^Tasks {5}\[=+\] 0\/0 $/);
  expect(renders.at(-1)).toMatch(/^histories \[=+-+\] 5\/10 $/);
  expect(written.at(-1)).toBe('\n');
});
