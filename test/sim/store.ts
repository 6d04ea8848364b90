// The in-memory server the simulation runs on: test/harness/server-mock.ts (paging, quota, faults,
// the request log), plus three things a month of clinic needs and the harness does not give:
// - ids that do not depend on chance, so a seed replays exactly (bots' creates get `b<n>`);
// - searches narrowed by indexes before the repository's own matching (store-index.ts): the
//   repository still matches every filter on what is left, so results are unchanged; without them
//   a month of sweeps scans every message of the clinic four times a quarter hour;
// - a read-only view of what is stored, for the oracle (no request, no quota).
import type { Communication, Resource, Task } from '@medplum/fhirtypes';
import { createServerMock } from '../harness/server-mock';
import type { ServerMock } from '../harness/server-mock';
import { indexStore } from './store-index';
import type { RepoInternals } from './store-index';

type Repo = RepoInternals & { generateId(): string };

/** The server and a view of its store. */
export interface SimServer {
  server: ServerMock;
  /** Stored resources of a type, by id (the store's own objects: never change them). */
  all<T extends Resource>(resourceType: T['resourceType']): ReadonlyMap<string, T>;
  task(id: string): Task | undefined;
  communication(id: string): Communication | undefined;
}

/**
 * Creates the simulation's server.
 * @returns The server and its store view.
 */
export function createSimServer(): SimServer {
  const server = createServerMock();
  const repo = (server.medplum as unknown as { repo: Repo }).repo;
  let created = 0;
  repo.generateId = () => `b${++created}`;
  const profile = process.env.SIM_PROFILE ? new Map<string, [number, number, number]>() : undefined;
  indexStore(repo, profile);
  if (profile) {
    process.on('exit', () => {
      for (const [key, [n, ms, scanned]] of [...profile].sort((a, b) => b[1][1] - a[1][1]).slice(0, 25)) {
        console.log(`${ms.toFixed(0).padStart(7)} ms ${String(n).padStart(6)}× scanned ${String(scanned).padStart(9)} ${key}`);
      }
    });
  }
  const empty = new Map<string, Resource>();
  const all = <T extends Resource>(type: string): ReadonlyMap<string, T> => (repo.resources.get(type) ?? empty) as unknown as ReadonlyMap<string, T>;
  return {
    server,
    all,
    task: (id) => all<Task>('Task').get(id),
    communication: (id) => all<Communication>('Communication').get(id),
  };
}

