// What every bot test file sets up: fixed time and quiet consoles.
import { afterEach, beforeEach, vi } from 'vitest';

/**
 * Fixes the time for each test of the file and silences the bots' console output (tests read it
 * through `vi.mocked(console.log)`). Only Date is faked: MedplumClient's retry back-off needs real timers.
 * @param now - The fixed time.
 */
export function useFixedTimeAndQuietConsole(now: string | number): void {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date(now));
    vi.spyOn(console, 'log').mockImplementation(() => undefined);
    vi.spyOn(console, 'warn').mockImplementation(() => undefined);
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });
}
