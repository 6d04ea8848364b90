// Turns one Project secret to a value for the length of a check, then back to what it was, merging
// (the server's secrets endpoint replaces the whole list) as `npm run settings` does.
import type { MedplumClient } from '@medplum/core';
import type { ProjectSetting } from '@medplum/fhirtypes';
import { planSecretsChange } from '../../src/admin/settings';

async function secrets(medplum: MedplumClient, projectId: string): Promise<ProjectSetting[]> {
  return (await medplum.get<{ project: { secret?: ProjectSetting[] } }>(`admin/projects/${projectId}`, { cache: 'no-cache' })).project.secret ?? [];
}

/**
 * Runs `fn` with a secret set, then restores it (or removes it when it was absent).
 * @param medplum - A Project admin client.
 * @param name - A secret the bots read.
 * @param value - Its value during `fn`.
 * @param fn - The check.
 * @returns What `fn` returned.
 */
export async function withSecret<T>(medplum: MedplumClient, name: string, value: string, fn: () => Promise<T>): Promise<T> {
  const projectId = medplum.getProject()?.id as string;
  const before = (await secrets(medplum, projectId)).find((s) => s.name === name);
  const apply = async (request: Parameters<typeof planSecretsChange>[1]): Promise<void> => {
    const change = planSecretsChange(await secrets(medplum, projectId), request);
    if ('refused' in change) {
      throw new Error(change.refused.join('; '));
    }
    await medplum.post(`admin/projects/${projectId}/secrets`, change.next);
  };
  await apply({ verb: 'set', pairs: [[name, value]] });
  try {
    return await fn();
  } finally {
    await apply(before?.valueString !== undefined ? { verb: 'set', pairs: [[name, before.valueString]] } : { verb: 'unset', names: [name] });
  }
}
