// What every bot test file sets up (fixed time, quiet consoles) and checks after every test:
// no log line carries a name, message text or secret value, and no bot write could fire the OOO
// Subscription again (a loop).
import type { Communication } from '@medplum/fhirtypes';
import { afterEach, beforeEach, expect, vi } from 'vitest';
import { PHI_MARKER } from './fixtures';
import { takeCreatedServers } from './server-mock';
import type { ServerMock } from './server-mock';

/**
 * Fixes the time for each test of the file, silences the bots' console output (tests read it
 * through `vi.mocked(console.log)`), and after each test runs the log and loop checks on
 * everything the test did. Only Date is faked: MedplumClient's retry back-off needs real timers.
 * @param now - The fixed time.
 */
export function useFixedTimeAndQuietConsole(now: string | number): void {
  beforeEach(() => {
    takeCreatedServers();
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date(now));
    vi.spyOn(console, 'log').mockImplementation(() => undefined);
    vi.spyOn(console, 'warn').mockImplementation(() => undefined);
  });
  afterEach(async () => {
    const lines = [console.log, console.warn].flatMap((fn) => vi.mocked(fn).mock.calls.map((args) => args.map(String).join(' ')));
    vi.useRealTimers();
    vi.restoreAllMocks();
    expect(linesWithPhi(lines)).toEqual([]);
    for (const server of takeCreatedServers()) {
      expect(await subscriptionLoopWrites(server)).toEqual([]);
    }
  });
}

/**
 * Log lines that carry protected text: fixture names, message text, topics and secret values all
 * contain PHI_MARKER.
 * @param lines - Logged lines.
 * @returns The offending lines.
 */
export function linesWithPhi(lines: string[]): string[] {
  return lines.filter((line) => line.includes(PHI_MARKER));
}

/**
 * Writes by the bots that create a Communication, or leave one with `partOf` in progress: either
 * matches `Communication?part-of:missing=false&status=in-progress` and would run the OOO bot again.
 * @param server - A server a test used.
 * @returns Descriptions of the offending writes.
 */
export async function subscriptionLoopWrites(server: ServerMock): Promise<string[]> {
  const writes = server.requests.flatMap((r) =>
    r.batchEntries ?? (r.method !== 'GET' && r.path !== '' ? [`${r.method} ${r.path}`] : [])
  );
  const offending: string[] = [];
  for (const write of writes) {
    const [method, url] = write.split(' ');
    const [type, id] = url.split('/');
    if (type !== 'Communication') {
      continue;
    }
    if (method === 'POST' || !id) {
      offending.push(`${write}: a bot created a Communication`);
      continue;
    }
    const after = await server.read<Communication>('Communication', id);
    if (after.partOf?.length && after.status === 'in-progress') {
      offending.push(`${write}: leaves a message in progress, which the OOO Subscription matches`);
    }
  }
  return offending;
}
