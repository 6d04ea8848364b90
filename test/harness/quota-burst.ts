// A burst of the Bot's other work (its other runs share the Bot's quota) spending the minute while one
// of the bot's requests is answered, so that the RateLimit header of that response says how little is left.
import { DEFAULT_CALLER } from './server-mock';
import type { RecordedRequest, ServerMock } from './server-mock';

/**
 * After the first request that `matches` (a search, 20 points), `left` points remain in the minute.
 * @param server - The server.
 * @param matches - The request after which the burst comes.
 * @param left - Points left after that request.
 */
export function burstAfter(server: ServerMock, matches: (request: RecordedRequest) => boolean, left: number): void {
  server.beforeRequest = (request) => {
    if (request.caller === DEFAULT_CALLER && matches(request)) {
      server.beforeRequest = undefined;
      server.quota.begin(DEFAULT_CALLER).charge(server.quota.remaining(DEFAULT_CALLER) - 20 - left);
    }
  };
}

/**
 * The requests the server refused for the quota (a 429, or a 429 inside a batch).
 * @param server - The server.
 * @returns Their keys.
 */
export function refusedForQuota(server: ServerMock): string[] {
  return server.requests.filter((r) => r.status === 429 || r.entryStatuses?.includes('429')).map((r) => r.key);
}
