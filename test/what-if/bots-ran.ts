// The clinic's history with the bots running: the script's messages written at their times, the
// real-time bot's event path on each (as the Subscription delivers it), its sweep and the reminders
// bot every hour: the real handlers on the test server, under a clock the caller moves. What they
// leave is what `what-if` reads as "what the bots actually did".
import { handler as oooHandler } from '../../src/ooo-reroute';
import { handler as staleHandler } from '../../src/stale-thread-reminders';
import { botEvent } from '../harness/fixtures';
import type { ServerMock } from '../harness/server-mock';
import { HOUR, seedScriptMessage } from './clinic';
import type { Script, Seeded } from './clinic';

/**
 * Runs the bots over a period.
 * @param server - The server (people, headers seeded; messages not yet).
 * @param script - The script.
 * @param seeded - What seeding made.
 * @param secrets - The bots' secrets.
 * @param until - The last run is before this.
 * @param setNow - Moves the clock (vi.setSystemTime, or the sample's clock).
 */
export async function runBots(server: ServerMock, script: Script, seeded: Seeded, secrets: Record<string, string>, until: number, setNow: (ms: number) => void): Promise<void> {
  const log = console.log;
  console.log = () => undefined; // the bots' run logs: ids and counts, not wanted here
  try {
    let next = 0;
    for (let hour = Math.ceil(script.start / HOUR) * HOUR; hour < until; hour += HOUR) {
      for (; next < script.messages.length && script.messages[next].at <= hour; next++) {
        const m = script.messages[next];
        setNow(m.at);
        const message = await seedScriptMessage(server, seeded, m);
        setNow(m.at + 500);
        await oooHandler(server.medplum, botEvent(message, secrets));
      }
      setNow(hour + 1_000);
      await oooHandler(server.medplum, botEvent({ resourceType: 'Bot' }, secrets));
      setNow(hour + 2_000);
      await staleHandler(server.medplum, botEvent({ resourceType: 'Bot' }, secrets));
    }
  } finally {
    console.log = log;
  }
}
