// Connecting the admin commands and the SLA export to a Medplum server, with errors that say which
// server was tried and why it did not answer.
import { MedplumClient, normalizeErrorString } from '@medplum/core';
import type { OperationOutcome } from '@medplum/fhirtypes';
import { existsSync } from 'node:fs';

/** Medplum's hosted API, the Medplum CLI's default. */
export const DEFAULT_BASE_URL = 'https://api.medplum.com/';

/** Credentials and server, as the Medplum CLI reads them from the environment. */
export interface ConnectionEnv {
  MEDPLUM_BASE_URL?: string;
  MEDPLUM_CLIENT_ID?: string;
  MEDPLUM_CLIENT_SECRET?: string;
}

/**
 * Loads `.env` into the environment as the Medplum CLI does, only when the file exists; variables
 * already set win.
 * @param file - The file, `.env` by default.
 */
export function loadDotEnv(file = '.env'): void {
  if (existsSync(file)) {
    process.loadEnvFile(file);
  }
}

/**
 * The dotenv file an admin command reads: `.env`, or for `--env NAME` `.env.NAME` (never `.env`,
 * which holds another environment's credentials: without `.env.NAME` only the process's environment
 * counts).
 * @param envName - The `--env` name, if any.
 * @param exists - Whether a file exists.
 * @returns The file to load, or undefined for none.
 */
export function dotEnvFile(envName: string | undefined, exists: (path: string) => boolean = existsSync): string | undefined {
  const file = envName ? `.env.${envName}` : '.env';
  return exists(file) ? file : undefined;
}

/**
 * The connection settings from the environment (an unset CI secret arrives as an empty string).
 * @param env - The environment.
 * @returns The settings, the base URL with a trailing slash.
 */
export function connectionEnv(env: NodeJS.ProcessEnv = process.env): Required<Pick<ConnectionEnv, 'MEDPLUM_BASE_URL'>> & ConnectionEnv {
  const base = env.MEDPLUM_BASE_URL || DEFAULT_BASE_URL;
  return {
    MEDPLUM_BASE_URL: base.endsWith('/') ? base : `${base}/`,
    MEDPLUM_CLIENT_ID: env.MEDPLUM_CLIENT_ID || undefined,
    MEDPLUM_CLIENT_SECRET: env.MEDPLUM_CLIENT_SECRET || undefined,
  };
}

/**
 * Logs in with client credentials.
 * @param env - Server and credentials.
 * @param fetchImpl - The fetch to use (tests).
 * @returns A logged-in client.
 */
export async function connect(env: ConnectionEnv, fetchImpl: typeof fetch = fetch): Promise<MedplumClient> {
  const { MEDPLUM_BASE_URL: baseUrl, MEDPLUM_CLIENT_ID: id, MEDPLUM_CLIENT_SECRET: secret } = connectionEnv(env as NodeJS.ProcessEnv);
  if (!id || !secret) {
    throw new Error('MEDPLUM_CLIENT_ID and MEDPLUM_CLIENT_SECRET are not set (client credentials of the Project; put them in .env or the environment)');
  }
  if (!/^https?:\/\//.test(baseUrl)) {
    throw new Error(`MEDPLUM_BASE_URL ${baseUrl} is not an http(s) URL`);
  }
  const fhirBase = /^(.*?\/)fhir\/R4\/?$/i.exec(baseUrl);
  if (fhirBase) {
    // A FHIR base answers 401 on oauth2/token, which would read as refused credentials.
    throw new Error(`MEDPLUM_BASE_URL ${baseUrl} is a FHIR base; give the server's base URL: ${fhirBase[1]}`);
  }
  const medplum = new MedplumClient({ baseUrl, fetch: fetchImpl });
  try {
    await medplum.startClientLogin(id, secret);
  } catch (err) {
    throw new Error(describeConnectionError(baseUrl, err));
  }
  return medplum;
}

/**
 * Why a server did not let us in, in words an admin can act on.
 * @param baseUrl - The server tried.
 * @param err - What the client threw.
 * @returns The message, naming the URL.
 */
export function describeConnectionError(baseUrl: string, err: unknown): string {
  const tokenUrl = `${baseUrl}oauth2/token`;
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const code = cause?.code ?? '';
  if (code === 'ECONNREFUSED') {
    return `could not connect to ${baseUrl}: connection refused (is the server running, and is this its port?)`;
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return `could not connect to ${baseUrl}: the host name does not resolve (DNS: ${code})`;
  }
  if (/CERT|SSL|TLS|SELF_SIGNED/.test(code) || /certificate/i.test(cause?.message ?? '')) {
    return `could not connect to ${baseUrl}: TLS failed (${code || cause?.message}); check the URL's scheme and the server's certificate`;
  }
  if (code === 'ETIMEDOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') {
    return `could not connect to ${baseUrl}: timed out`;
  }
  const outcome = (err as { outcome?: OperationOutcome }).outcome;
  const text = normalizeErrorString(err);
  if (outcome?.id === 'not-found' || /^not found$/i.test(text)) {
    return `${tokenUrl} answered 404: is MEDPLUM_BASE_URL the server's base URL (e.g. https://api.medplum.com/), not its FHIR base (…/fhir/R4/)?`;
  }
  if (/not valid JSON|Unexpected token/i.test(`${text} ${cause?.message ?? ''}`)) {
    return `${tokenUrl} did not answer as a Medplum server (not JSON): is MEDPLUM_BASE_URL the server's base URL (e.g. https://api.medplum.com/), not its FHIR base (…/fhir/R4/) or an app URL?`;
  }
  if (/invalid client|invalid_client|unauthorized|invalid secret/i.test(text)) {
    return `${tokenUrl} refused the client credentials (${text}): check MEDPLUM_CLIENT_ID and MEDPLUM_CLIENT_SECRET`;
  }
  return `login at ${tokenUrl} failed: ${text}${cause?.message ? ` (${cause.message})` : ''}`;
}
