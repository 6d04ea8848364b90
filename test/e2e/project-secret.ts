// The Project's secrets in the tests that touch a real Project: turn one to a value for the length of
// a check, then back; and put back, at the end of a run, every secret the run changed (setup's
// defaults included), exactly as it was. Written with the Project's version (`updateSecrets`, as
// `npm run settings` and setup do), so a secret another admin changes meanwhile is kept.
import type { MedplumClient } from '@medplum/core';
import type { ProjectSetting } from '@medplum/fhirtypes';
import { updateSecrets } from '../../src/admin/project-secrets';
import { planSecretsChange } from '../../src/admin/settings';

/** Every secret `withSecret` changed in this process, for the run's final restore to cover. */
export const touchedSecrets = new Set<string>();

/**
 * The Project's secrets as they are now.
 * @param medplum - A Project admin client.
 * @param projectId - The Project.
 * @returns The list.
 */
export async function readSecrets(medplum: MedplumClient, projectId: string): Promise<ProjectSetting[]> {
  return (await medplum.get<{ project: { secret?: ProjectSetting[] } }>(`admin/projects/${projectId}`, { cache: 'no-cache' })).project.secret ?? [];
}

const entriesOf = (list: ProjectSetting[], name: string): string => JSON.stringify(list.filter((s) => s.name === name));

/**
 * The names whose entries differ between two lists (added, removed, or another value).
 * @param a - One list.
 * @param b - The other.
 * @returns The names, sorted.
 */
export function changedSecretNames(a: ProjectSetting[], b: ProjectSetting[]): string[] {
  const names = new Set([...a, ...b].map((s) => s.name));
  return [...names].filter((name) => entriesOf(a, name) !== entriesOf(b, name)).sort();
}

/**
 * The list with these names put back as they were (each entry exactly as it was, or removed when
 * it was absent), every other secret as it is now.
 * @param current - The list now.
 * @param before - The list as it was.
 * @param names - The secrets to put back.
 * @returns The list to write, or undefined when they are already as they were.
 */
export function restoredSecrets(current: ProjectSetting[], before: ProjectSetting[], names: Iterable<string>): ProjectSetting[] | undefined {
  const restore = new Set([...names].filter((name) => entriesOf(current, name) !== entriesOf(before, name)));
  if (!restore.size) {
    return undefined;
  }
  return [...current.filter((s) => !restore.has(s.name)), ...before.filter((s) => restore.has(s.name))];
}

/**
 * Puts these secrets back as they were.
 * @param medplum - A Project admin client.
 * @param projectId - The Project.
 * @param before - The list as it was.
 * @param names - The secrets to put back.
 * @returns The names it wrote back.
 */
export async function restoreSecrets(medplum: MedplumClient, projectId: string, before: ProjectSetting[], names: Iterable<string>): Promise<string[]> {
  const wanted = [...names];
  const update = await updateSecrets(medplum, projectId, (current) => restoredSecrets(current, before, wanted));
  return update.written ? changedSecretNames(update.before, update.after) : [];
}

/**
 * Runs `fn` with a secret set, then puts it back exactly as it was (or removes it when it was absent).
 * @param medplum - A Project admin client.
 * @param name - A secret the bots read.
 * @param value - Its value during `fn`.
 * @param fn - The check.
 * @returns What `fn` returned.
 */
export async function withSecret<T>(medplum: MedplumClient, name: string, value: string, fn: () => Promise<T>): Promise<T> {
  const projectId = medplum.getProject()?.id as string;
  touchedSecrets.add(name);
  let before: ProjectSetting[] = [];
  await updateSecrets(medplum, projectId, (current) => {
    before = current;
    const change = planSecretsChange(current, { verb: 'set', pairs: [[name, value]] });
    if ('refused' in change) {
      throw new Error(change.refused.join('; '));
    }
    return changedSecretNames(current, change.next).length ? change.next : undefined;
  });
  try {
    return await fn();
  } finally {
    await restoreSecrets(medplum, projectId, before, [name]);
  }
}
