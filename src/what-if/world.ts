// The replay's world: the Tasks and thread headers as the bots' writes leave them, in memory. The
// writes are the bundle entries the bots' decision code returns (conditional creates, version-guarded
// JSON Patches), applied here as a server would apply them, so nothing reaches the Project.
import { applyPatch, decodeBase64 } from '@medplum/core';
import type { Operation, WithId } from '@medplum/core';
import type { Binary, BundleEntry, Communication, Resource, Task } from '@medplum/fhirtypes';
import { isOpenTask } from '../lib/fhir';

/** What became of one write. */
export type Applied = { ok: true; resource: WithId<Resource>; created: boolean } | { ok: false; why: 'exists' | 'conflict' | 'not-found' };

/** Tasks and headers in memory, with every version of each Task (for the SLA metrics). */
export class World {
  private readonly tasks = new Map<string, WithId<Task>>();
  private readonly versions = new Map<string, WithId<Task>[]>();
  private readonly headers = new Map<string, WithId<Communication>>();
  private readonly byThread = new Map<string, Set<string>>();
  private created = 0;
  /** Version ids the replay gives: unique, so a version-guarded patch of a stale copy fails as on a server. */
  private versionsGiven = 0;

  /**
   * Adds a thread header (a copy: the replay may change its recipients and status).
   * @param header - The header as read.
   */
  addHeader(header: WithId<Communication>): void {
    this.headers.set(`Communication/${header.id}`, structuredClone(header));
  }

  /**
   * A thread's header as the replay has it.
   * @param ref - The thread reference.
   * @returns The header.
   */
  header(ref: string): WithId<Communication> | undefined {
    return this.headers.get(ref);
  }

  /**
   * Puts a Task made outside the bots (by a person, another integration) into the world as it was.
   * @param task - The Task.
   * @param at - When it appeared.
   */
  addTask(task: WithId<Task>, at: number): void {
    this.store(structuredClone({ ...task, meta: { ...task.meta, versionId: this.nextVersion(), lastUpdated: new Date(at).toISOString() } }));
  }

  /**
   * Changes a Task made outside the bots (a person closed it).
   * @param id - Its id.
   * @param fields - The fields that change.
   * @param at - When.
   */
  changeTask(id: string, fields: Partial<Task>, at: number): void {
    const task = this.tasks.get(id);
    if (task) {
      this.store({ ...task, ...fields, meta: { ...task.meta, versionId: this.nextVersion(), lastUpdated: new Date(at).toISOString() } });
    }
  }

  /**
   * The open Tasks focused on a thread.
   * @param thread - The thread reference.
   * @returns The Tasks. The world never changes a stored Task in place (each change stores a new
   *   object), and the decision code never changes its inputs, so they are shared, not copied.
   */
  openTasks(thread: string): WithId<Task>[] {
    return [...(this.byThread.get(thread) ?? [])].map((id) => this.tasks.get(id) as WithId<Task>).filter(isOpenTask);
  }

  /**
   * Whether a thread has an open Task (cheaper than reading them).
   * @param thread - The thread reference.
   * @returns True when one is open.
   */
  hasOpenTasks(thread: string): boolean {
    return [...(this.byThread.get(thread) ?? [])].some((id) => isOpenTask(this.tasks.get(id) as Task));
  }

  /**
   * A Task as it is now.
   * @param id - Its id.
   * @returns The Task (a copy).
   */
  task(id: string): WithId<Task> | undefined {
    const task = this.tasks.get(id);
    return task && structuredClone(task);
  }

  /** @returns Every Task, as it is now. */
  allTasks(): WithId<Task>[] {
    return [...this.tasks.values()];
  }

  /**
   * Every version of a Task, oldest first.
   * @param id - Its id.
   * @returns The versions.
   */
  history(id: string): WithId<Task>[] {
    return this.versions.get(id) ?? [];
  }

  /**
   * Applies one bundle entry of a bot's plan, as the server would.
   * @param entry - A conditional create (POST with ifNoneExist on identifiers) or a guarded PATCH.
   * @param at - When (epoch ms): the new version's lastUpdated.
   * @returns What happened.
   */
  apply(entry: BundleEntry, at: number): Applied {
    const lastUpdated = new Date(at).toISOString();
    const request = entry.request;
    if (request?.method === 'POST' && entry.resource?.resourceType === 'Task') {
      const names = (request.ifNoneExist ?? '').replace(/^identifier=/, '').split(',').filter(Boolean);
      const taken = [...this.tasks.values()].some((t) => t.identifier?.some((i) => names.includes(`${i.system}|${i.value}`)));
      if (taken) {
        return { ok: false, why: 'exists' };
      }
      const task = { ...(structuredClone(entry.resource) as Task), id: `replay-${++this.created}`, meta: { versionId: this.nextVersion(), lastUpdated } } as WithId<Task>;
      this.store(task);
      return { ok: true, resource: task, created: true };
    }
    if (request?.method === 'PATCH') {
      const ref = request.url as string;
      const current = ref.startsWith('Task/') ? this.tasks.get(ref.slice(5)) : this.headers.get(ref);
      if (!current) {
        return { ok: false, why: 'not-found' };
      }
      const operations = JSON.parse(decodeBase64((entry.resource as Binary).data as string)) as Operation[];
      const next = structuredClone(current) as WithId<Resource>;
      if (applyPatch(next, operations).some((r) => r !== null)) {
        return { ok: false, why: 'conflict' };
      }
      next.meta = { ...next.meta, versionId: this.nextVersion(), lastUpdated };
      if (next.resourceType === 'Task') {
        this.store(next as WithId<Task>);
      } else {
        this.headers.set(ref, next as WithId<Communication>);
      }
      return { ok: true, resource: next, created: false };
    }
    throw new Error(`the replay does not apply ${request?.method} ${request?.url}`);
  }

  private nextVersion(): string {
    return `w${++this.versionsGiven}`;
  }

  private store(task: WithId<Task>): void {
    this.tasks.set(task.id, task);
    this.versions.set(task.id, [...(this.versions.get(task.id) ?? []), task]);
    const thread = task.focus?.reference;
    if (thread) {
      this.byThread.set(thread, (this.byThread.get(thread) ?? new Set()).add(task.id));
    }
  }
}
