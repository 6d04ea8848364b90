import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { describe, expect, test } from 'vitest';
import { connect, connectionEnv, describeConnectionError, loadDotEnv } from '../../src/admin/connect';

const creds = { MEDPLUM_CLIENT_ID: 'id', MEDPLUM_CLIENT_SECRET: 'secret' };
const answer = (status: number, body: string, type = 'application/json'): typeof fetch =>
  (async () => new Response(body, { status, headers: { 'content-type': type } })) as typeof fetch;

describe('connect says which server it tried and why it failed', () => {
  test('connection refused (a real closed port on loopback)', async () => {
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as { port: number };
        probe.close(() => resolve(port));
      });
    });
    await expect(connect({ ...creds, MEDPLUM_BASE_URL: `http://127.0.0.1:${port}/` })).rejects.toThrow(
      `could not connect to http://127.0.0.1:${port}/: connection refused (is the server running, and is this its port?)`
    );
  });

  test('another path than the server base: 404 on oauth2/token, or a page that is not JSON', async () => {
    await expect(connect({ ...creds, MEDPLUM_BASE_URL: 'https://example.com/app/' }, answer(404, 'Not Found', 'text/html'))).rejects.toThrow(
      "https://example.com/app/oauth2/token did not answer as a Medplum server (not JSON): is MEDPLUM_BASE_URL the server's base URL"
    );
    const notFound = answer(404, JSON.stringify({ resourceType: 'OperationOutcome', id: 'not-found', issue: [{ severity: 'error', code: 'not-found', details: { text: 'Not found' } }] }));
    await expect(connect({ ...creds, MEDPLUM_BASE_URL: 'https://example.com/base/' }, notFound)).rejects.toThrow('answered 404');
  });

  test('a FHIR base is named as such before any request (a real server answers it 401, which read as bad credentials)', async () => {
    let asked = 0;
    const unauthorized = (async () => {
      asked++;
      return new Response(JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'login', details: { text: 'Unauthorized' } }] }), { status: 401 });
    }) as typeof fetch;
    await expect(connect({ ...creds, MEDPLUM_BASE_URL: 'https://example.com/fhir/R4/' }, unauthorized)).rejects.toThrow(
      "MEDPLUM_BASE_URL https://example.com/fhir/R4/ is a FHIR base; give the server's base URL: https://example.com/"
    );
    expect(asked).toBe(0);
  });

  test('wrong credentials', async () => {
    const refused = answer(400, JSON.stringify({ error: 'invalid_request', error_description: 'Invalid client' }));
    await expect(connect({ ...creds, MEDPLUM_BASE_URL: 'https://example.com' }, refused)).rejects.toThrow(
      'https://example.com/oauth2/token refused the client credentials'
    );
  });

  test.each([
    ['ENOTFOUND', 'the host name does not resolve (DNS: ENOTFOUND)'],
    ['CERT_HAS_EXPIRED', 'TLS failed (CERT_HAS_EXPIRED)'],
    ['ETIMEDOUT', 'timed out'],
  ])('%s', (code, message) => {
    const err = Object.assign(new TypeError('fetch failed'), { cause: { code } });
    expect(describeConnectionError('https://medplum.example/', err)).toBe(`could not connect to https://medplum.example/: ${message}${code === 'CERT_HAS_EXPIRED' ? "; check the URL's scheme and the server's certificate" : ''}`);
  });

  test('missing credentials or a base URL that is not http(s): said before any request', async () => {
    await expect(connect({ MEDPLUM_BASE_URL: 'https://x/' })).rejects.toThrow('MEDPLUM_CLIENT_ID and MEDPLUM_CLIENT_SECRET are not set');
    await expect(connect({ ...creds, MEDPLUM_BASE_URL: 'localhost:8103' })).rejects.toThrow('MEDPLUM_BASE_URL localhost:8103/ is not an http(s) URL');
  });

  test('the base URL gets its trailing slash; empty CI secrets count as unset', () => {
    expect(connectionEnv({ MEDPLUM_BASE_URL: 'http://localhost:8103', MEDPLUM_CLIENT_ID: '' })).toEqual({
      MEDPLUM_BASE_URL: 'http://localhost:8103/',
      MEDPLUM_CLIENT_ID: undefined,
      MEDPLUM_CLIENT_SECRET: undefined,
    });
    expect(connectionEnv({}).MEDPLUM_BASE_URL).toBe('https://api.medplum.com/');
  });
});

test('.env is loaded when it exists, and does not override what is set', () => {
  const dir = mkdtempSync('/tmp/env-');
  writeFileSync(`${dir}/.env`, 'TEST_DOTENV_A=from-file\nTEST_DOTENV_B=from-file\n');
  process.env.TEST_DOTENV_B = 'already';
  try {
    loadDotEnv(`${dir}/.env`);
    loadDotEnv(`${dir}/missing.env`);
    expect(process.env.TEST_DOTENV_A).toBe('from-file');
    expect(process.env.TEST_DOTENV_B).toBe('already');
  } finally {
    delete process.env.TEST_DOTENV_A;
    delete process.env.TEST_DOTENV_B;
  }
});
