// One bot run as the server makes it: a fresh client for the Bot's membership (its own quota, shared
// by every run of that Bot), the Bot's secrets, and the handler of the built bundle in a fresh
// sandbox. Every request the run makes is tagged with the run, and every response's RateLimit header
// is read as the bot reads it, so the oracle can tell a request the bot had no way to know would be
// throttled from one it sent after the server said the quota was spent.
import type { BotEvent } from '@medplum/core';
import type { RecordedRequest } from '../harness/server-mock';
import { BotConsole } from './bundles';
import type { BotName, BundleRunner } from './bundles';
import type { SimClock } from './clock';
import type { SimServer } from './store';

export type RunKind = 'event' | 'sweep' | 'stale';

/** Quota points a request or batch entry is expected to cost (the bots' own estimate, from the published unit costs). */
const ENTRY_COST = { read: 1, search: 20, write: 100, conditionalCreate: 120 };

export interface RunRecord {
  id: number;
  bot: BotName;
  kind: RunKind;
  /** What started it: a message reference, `cron`, `cron (overlapping)`. */
  trigger: string;
  start: number;
  end: number;
  outcome: 'ok' | 'failed';
  summary?: Record<string, unknown>;
  error?: string;
  requests: RecordedRequest[];
  /** A fault the simulation injected (503) hit one of this run's requests. */
  faultHit: boolean;
  /** Quota left to the Bot when the run started. */
  quotaAtStart: number;
  /** A burst of the Bot's other work spent its quota while this run was under way. */
  drainedDuring: boolean;
  /** Requests refused for quota although the last RateLimit header the run had seen said they did not fit. */
  throttledKnowingly: string[];
  /** Requests refused for quota. */
  throttled: number;
  lines: string[];
}

/** Runs bots for the simulation. */
export class BotRunner {
  private count = 0;
  /** A burst of the Bot's own work that will spend its quota after a run's first requests. */
  private midRunDrain?: { bot: BotName; kind?: RunKind; afterRequests: number; drain: () => void };
  private readonly inFlight = new Set<RunRecord>();

  constructor(
    private readonly sim: SimServer,
    private readonly clock: SimClock,
    private readonly runners: Record<BotName, BundleRunner>,
    private readonly secrets: Record<string, string>
  ) {}

  /**
   * Spends a Bot's quota in the middle of its next run.
   * @param bot - The Bot.
   * @param kind - Only a run of this kind (any when undefined).
   * @param afterRequests - After this many of the run's requests.
   * @param drain - Spends it.
   */
  drainMidRun(bot: BotName, kind: RunKind | undefined, afterRequests: number, drain: () => void): void {
    this.midRunDrain = { bot, kind, afterRequests, drain };
  }

  /** Quota points left to a Bot's membership now. */
  quotaLeft(bot: BotName): number {
    return this.sim.server.quota.remaining(bot);
  }

  /**
   * Runs a bot once.
   * @param bot - Which bot.
   * @param kind - Event, sweep or stale run.
   * @param input - `event.input`.
   * @param trigger - A label.
   * @returns The run's record.
   */
  async run(bot: BotName, kind: RunKind, input: unknown, trigger: string): Promise<RunRecord> {
    const id = ++this.count;
    const record: RunRecord = {
      id,
      bot,
      kind,
      trigger,
      start: this.clock.now(),
      end: 0,
      outcome: 'ok',
      requests: [],
      faultHit: false,
      quotaAtStart: this.quotaLeft(bot),
      drainedDuring: false,
      throttledKnowingly: [],
      throttled: 0,
      lines: [],
    };
    const client = this.sim.server.clientAs(bot);
    const internals = client as unknown as { fetch: (url: string, init?: RequestInit) => Promise<Response> };
    const inner = internals.fetch;
    let lastSeen: number | undefined;
    internals.fetch = async (url, init) => {
      const index = this.sim.server.requests.length;
      const pending = inner(url, init);
      // The harness records the request before its first await: this is the run's request.
      const request = this.sim.server.requests[index];
      record.requests.push(request);
      const knew = lastSeen;
      const response = await pending;
      const header = /"fhirInteractions";r=(\d+)/.exec(response.headers.get('ratelimit') ?? '');
      if (request.status === undefined) {
        record.faultHit = true; // the harness answered with an injected fault
      }
      const refused = throttledAt(request, response.status);
      if (refused !== undefined) {
        record.throttled++;
        if (knew !== undefined && knew < refused) {
          record.throttledKnowingly.push(`${request.key}?${[...new URL(request.url).searchParams.keys()].join('&')} sent with ${knew} points left by the last RateLimit header, needing ${refused}`);
        }
      }
      if (header) {
        lastSeen = Number(header[1]);
      }
      const burst = this.midRunDrain;
      if (burst?.bot === bot && (!burst.kind || burst.kind === kind) && record.requests.length >= burst.afterRequests) {
        this.midRunDrain = undefined;
        burst.drain();
        for (const other of this.inFlight) {
          other.drainedDuring ||= other.bot === bot;
        }
      }
      return response;
    };
    const botConsole = new BotConsole();
    const event: BotEvent = { bot: { reference: `Bot/${bot}` }, contentType: 'application/fhir+json', input, secrets: secretsOf(this.secrets) };
    this.inFlight.add(record);
    try {
      record.summary = (await this.runners[bot].run(client, event, botConsole)) as Record<string, unknown>;
    } catch (err) {
      record.outcome = 'failed';
      record.error = err instanceof Error ? err.message : String(err);
      record.summary = (err as { summary?: Record<string, unknown> }).summary;
    }
    this.inFlight.delete(record);
    record.lines = botConsole.messages;
    record.end = this.clock.now();
    return record;
  }
}

function secretsOf(values: Record<string, string>): BotEvent['secrets'] {
  return Object.fromEntries(Object.entries(values).map(([name, valueString]) => [name, { name, valueString }]));
}

/**
 * Whether a request (or one of its batch entries) was refused for quota, and what it was expected
 * to cost up to that point.
 * @param request - The recorded request.
 * @param status - The HTTP status.
 * @returns The points the refused part needed (the whole request, or the batch's entries up to the
 *   first refused one), or undefined when nothing was refused.
 */
function throttledAt(request: RecordedRequest, status: number): number | undefined {
  if (status === 429) {
    return request.method === 'GET' ? (/^GET [A-Za-z]+$/.test(request.key) ? ENTRY_COST.search : ENTRY_COST.read) : ENTRY_COST.write;
  }
  const refused = request.entryStatuses?.indexOf('429') ?? -1;
  if (refused < 0 || !request.batchEntries) {
    return undefined;
  }
  return request.batchEntries.slice(0, refused + 1).reduce((sum, entry) => {
    const [method, url] = entry.split(' ');
    return sum + (method === 'POST' ? ENTRY_COST.conditionalCreate : method === 'GET' ? (url.includes('/') ? ENTRY_COST.read : ENTRY_COST.search) : ENTRY_COST.write);
  }, 0);
}
