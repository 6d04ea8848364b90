// A bot's marker: the one Basic a bot keeps its state in (the reminders' reconcile progress, the
// sweep's look-back), found and made by its identifier, tagged as the project's, and written with
// a version-guarded patch of its extensions, or made by a conditional create (If-None-Exist is
// atomic, so two runs never make two).
import type { WithId } from '@medplum/core';
import type { Basic, BundleEntry, Coding, Extension } from '@medplum/fhirtypes';
import { guardedPatchEntry } from './fhir';

/** What names a bot's marker. */
export interface BotMarker {
  identifier: { system: string; value: string };
  /** The project's tag (setup's MANAGED_TAG_SYSTEM and the bot's name). */
  tag: Coding;
  code: Coding;
  /** Says what it holds, to a person who finds it in the App. */
  text: string;
}

/**
 * The search value that finds a marker.
 * @param kind - The marker.
 * @returns `system|value`.
 */
export function markerSearch(kind: BotMarker): string {
  return `${kind.identifier.system}|${kind.identifier.value}`;
}

/**
 * The write that records a state on a marker: a version-guarded patch replacing its extensions, or
 * its conditional create.
 * @param kind - The marker.
 * @param marker - The marker as read, if any.
 * @param extension - The state.
 * @returns The batch entry.
 */
export function markerWrite(kind: BotMarker, marker: WithId<Basic> | undefined, extension: Extension[]): BundleEntry {
  if (marker) {
    return guardedPatchEntry(marker, [{ op: 'add', path: '/extension', value: extension }]);
  }
  const resource: Basic = {
    resourceType: 'Basic',
    meta: { tag: [kind.tag] },
    identifier: [kind.identifier],
    code: { coding: [kind.code], text: kind.text },
    extension,
  };
  return { request: { method: 'POST', url: 'Basic', ifNoneExist: `identifier=${markerSearch(kind)}` }, resource };
}
