// Writing the Project's secrets without losing another admin's change.
//
// The secrets live on the Project resource, and the server replaces the whole list on each write
// (`POST admin/projects/{id}/secrets` has no version check). A Project admin may read and update its
// own Project through FHIR, and the server honours `If-Match` there (412 Precondition Failed when the
// Project changed since it was read; readonly and hidden fields are restored by the server). So the
// list is read with its version, changed, and written with `If-Match`; on 412 it is read again and
// the change made again on what is there now, a few times. Two `settings set` (or a setup and a
// `settings set`) at once then both keep their change.
//
// Where the Project cannot be read through FHIR (an older server, a client whose policy hides it),
// the admin endpoints are used: read, merge, write, read back and check the change is there, and
// retry when it is not. What remains there, and against anyone who writes without a version check
// (the Medplum app's secrets page, an older version of these commands), is the moment between their
// read and their write: a change made in it is overwritten by them, and only a later read shows it.
import { getStatus, isOperationOutcome, normalizeErrorString } from '@medplum/core';
import type { MedplumClient } from '@medplum/core';
import type { Project, ProjectSetting } from '@medplum/fhirtypes';

/** How many times a write is tried when the Project changed meanwhile. */
export const SECRET_WRITE_ATTEMPTS = 5;

/** What a secrets update did. */
export interface SecretsUpdate {
  /** False when the change had nothing to do on the list as it was. */
  written: boolean;
  /** The list the change was made on (the last one read). */
  before: ProjectSetting[];
  /** The list written (or the one read, when nothing was written). */
  after: ProjectSetting[];
  /** Reads it took (1 unless the Project changed meanwhile). */
  attempts: number;
  /** How the write was guarded: `if-match` (the server's version check) or `read-back`. */
  guard: 'if-match' | 'read-back';
}

/**
 * Applies a change to the Project's secrets with a version check, retrying when the Project changed.
 * @param medplum - A Project admin client.
 * @param projectId - The Project.
 * @param change - Makes the new list from the current one; undefined when there is nothing to do.
 *   It may be called again on a newer list, so it must be a pure function of the list.
 * @param attempts - How many times to try.
 * @returns What was done.
 */
export async function updateSecrets(
  medplum: MedplumClient,
  projectId: string,
  change: (current: ProjectSetting[]) => ProjectSetting[] | undefined,
  attempts = SECRET_WRITE_ATTEMPTS
): Promise<SecretsUpdate> {
  const project = await medplum.readResource('Project', projectId, { cache: 'no-cache' }).catch((err: unknown) => {
    if ([401, 403, 404].includes(statusOf(err))) {
      return undefined; // not readable through FHIR: the admin endpoints below
    }
    throw err;
  });
  if (!project) {
    return updateByReadBack(medplum, projectId, change, attempts);
  }
  let current: Project = project;
  for (let attempt = 1; ; attempt++) {
    const before = current.secret ?? [];
    const next = change(before);
    if (!next) {
      return { written: false, before, after: before, attempts: attempt, guard: 'if-match' };
    }
    try {
      await medplum.updateResource<Project>({ ...current, secret: next }, { headers: { 'If-Match': `W/"${current.meta?.versionId}"` } });
      return { written: true, before, after: next, attempts: attempt, guard: 'if-match' };
    } catch (err) {
      if (statusOf(err) !== 412 || attempt >= attempts) {
        throw statusOf(err) === 412 ? new Error(`the Project's secrets changed ${attempt} times while writing; nothing written, try again`) : err;
      }
    }
    current = await medplum.readResource('Project', projectId, { cache: 'no-cache' });
  }
}

async function updateByReadBack(
  medplum: MedplumClient,
  projectId: string,
  change: (current: ProjectSetting[]) => ProjectSetting[] | undefined,
  attempts: number
): Promise<SecretsUpdate> {
  const read = async (): Promise<ProjectSetting[]> =>
    (await medplum.get<{ project: { secret?: ProjectSetting[] } }>(`admin/projects/${projectId}`, { cache: 'no-cache' })).project.secret ?? [];
  let before = await read();
  for (let attempt = 1; ; attempt++) {
    const next = change(before);
    if (!next) {
      return { written: false, before, after: before, attempts: attempt, guard: 'read-back' };
    }
    await medplum.post(`admin/projects/${projectId}/secrets`, next);
    const now = await read();
    // Our change is there when applying it again to what the Project has now changes nothing.
    const again = change(now);
    if (!again || sameList(again, now)) {
      return { written: true, before, after: now, attempts: attempt, guard: 'read-back' };
    }
    if (attempt >= attempts) {
      throw new Error(`the Project's secrets changed ${attempt} times while writing and the change is not there; try again`);
    }
    before = now;
  }
}

function sameList(a: ProjectSetting[], b: ProjectSetting[]): boolean {
  const key = (list: ProjectSetting[]): string => JSON.stringify([...list].sort((x, y) => x.name.localeCompare(y.name)));
  return key(a) === key(b);
}

function statusOf(err: unknown): number {
  const outcome = (err as { outcome?: unknown }).outcome;
  if (isOperationOutcome(outcome)) {
    return getStatus(outcome);
  }
  return /precondition failed/i.test(normalizeErrorString(err)) ? 412 : 0;
}
