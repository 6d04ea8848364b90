import type { MedplumClient } from '@medplum/core';
import { describe, expect, test } from 'vitest';
import { entryCost, isQuotaError, quotaLeft, QUOTA_COST } from '../../src/lib/quota';

describe('entryCost: what the server charges a batch entry', () => {
  test.each<[string, object, number]>([
    ['a conditional create', { request: { method: 'POST', url: 'Task', ifNoneExist: 'identifier=a|b' } }, 120],
    ['a create', { request: { method: 'POST', url: 'Task' } }, 100],
    ['a patch', { request: { method: 'PATCH', url: 'Task/1' } }, 100],
    ['a delete', { request: { method: 'DELETE', url: 'Task/1' } }, 100],
    ['a search', { request: { method: 'GET', url: 'Task?status=requested' } }, 20],
    ['a read', { request: { method: 'GET', url: 'Task/1' } }, 1],
    ['a history', { request: { method: 'GET', url: 'Task/1/_history' } }, 10],
    ['an entry without a request, charged as a write', {}, 100],
    ['a GET without a url, charged as a search', { request: { method: 'GET' } }, 20],
  ])('%s', (_name, entry, points) => {
    expect(entryCost(entry)).toBe(points);
  });
  test('the costs', () => {
    expect(QUOTA_COST).toEqual({ read: 1, search: 20, history: 10, write: 100, find: 22, conditionalCreate: 120 });
  });
});

describe('isQuotaError', () => {
  test.each<[string, unknown, boolean]>([
    ['the 429 outcome', { outcome: { resourceType: 'OperationOutcome', id: 'too-many-requests', issue: [] } }, true],
    ['an outcome with a throttled issue', { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'throttled' }] }, true],
    ['a throttled issue among others', { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'invalid' }, { severity: 'error', code: 'throttled' }] }, true],
    ['an outcome without issues', { resourceType: 'OperationOutcome' }, false],
    ['a plain error saying so', new Error('Too Many Requests'), true],
    ['another outcome', { outcome: { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'invalid' }] } }, false],
    ['another error', new Error('Service Unavailable'), false],
    ['nothing', undefined, false],
  ])('%s: %s', (_name, err, expected) => {
    expect(isQuotaError(err)).toBe(expected);
  });
});

describe('quotaLeft', () => {
  const client = (status: () => unknown): MedplumClient => ({ rateLimitStatus: status }) as unknown as MedplumClient;
  test('the fhirInteractions limit, not the per-IP request limit', () => {
    const medplum = client(() => [
      { name: 'requests', remainingUnits: 59_000, secondsUntilReset: 60 },
      { name: 'fhirInteractions', remainingUnits: 1_234, secondsUntilReset: 17 },
    ]);
    expect(quotaLeft(medplum)).toEqual({ points: 1_234, secondsUntilReset: 17 });
  });
  test('no FHIR quota header, or one MedplumClient cannot parse: unknown', () => {
    expect(quotaLeft(client(() => [{ name: 'requests', remainingUnits: 1, secondsUntilReset: 1 }]))).toBeUndefined();
    expect(
      quotaLeft(
        client(() => {
          throw new Error('Could not parse RateLimit header');
        })
      )
    ).toBeUndefined();
  });
});
