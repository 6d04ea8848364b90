// The admin commands run through cli.ts main() against the harness: files in memory, no environment.
import baseConfig from '../../medplum.config.json';
import { main } from '../../src/admin/cli';
import type { CliIo } from '../../src/admin/cli';
import { createServerMock } from '../harness/server-mock';
import type { ServerMock } from '../harness/server-mock';

/** MockClient's project. */
export const PROJECT = '123';

/** An admin running the commands against the harness, with files in memory. */
export interface Admin {
  server: ServerMock;
  files: Map<string, string>;
  run(...argv: string[]): Promise<{ code: number; out: string; err: string }>;
  ids(): Record<string, string>;
  setSecrets(secrets: Record<string, string>): Promise<void>;
  secrets(): Promise<Record<string, string>>;
}

/**
 * A hermetic admin: the command's own main(), the harness's client, files in memory.
 * @param server - The server.
 * @returns The admin.
 */
export function admin(server = createServerMock()): Admin {
  const files = new Map([['medplum.config.json', JSON.stringify(baseConfig)]]);
  const io = (out: string[], err: string[]): CliIo => ({
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    connect: async () => server.medplum,
    readFile: (p) => {
      const text = files.get(p);
      if (text === undefined) {
        throw new Error(`no file ${p}`);
      }
      return text;
    },
    fileSize: (p) => files.get(p)?.length ?? (p.endsWith('.ts') || p.endsWith('.js') ? 100 : undefined),
    writeFile: (p, t) => files.set(p, t),
    env: {}, // hermetic: the developer's environment and .env are not read
    sleep: async () => undefined, // waits take no time
  });
  return {
    server,
    files,
    run: async (...argv) => {
      const out: string[] = [];
      const err: string[] = [];
      const code = await main(argv, io(out, err));
      return { code, out: out.join('\n'), err: err.join('\n') };
    },
    ids: () => Object.fromEntries((JSON.parse(files.get('medplum.config.json') as string).bots as { name: string; id: string }[]).map((b) => [b.name, b.id])),
    setSecrets: async (secrets) => {
      await server.medplum.post(`admin/projects/${PROJECT}/secrets`, Object.entries(secrets).map(([name, valueString]) => ({ name, valueString })));
    },
    secrets: async () => {
      const { project } = await server.medplum.get(`admin/projects/${PROJECT}`);
      return Object.fromEntries(project.secret.map((s: { name: string; valueString: string }) => [s.name, s.valueString]));
    },
  };
}


/**
 * What `npm run deploy` gets in a test: the harness's client, the admin's files (a bot's source or
 * bundle is any text), credentials for a local server, and a build that does nothing.
 * @param a - The admin.
 * @param out - Collects what it prints, both streams.
 * @param build - The build step (counts builds, or fails one).
 * @returns The io.
 */
export function deployIo(a: Admin, out: string[], build: () => boolean = () => true): CliIo {
  return {
    out: (l) => out.push(l),
    err: (l) => out.push(l),
    connect: async () => a.server.medplum,
    readFile: (p) => a.files.get(p) ?? 'export {}',
    fileSize: (p) => a.files.get(p)?.length ?? 100,
    env: { MEDPLUM_BASE_URL: 'http://localhost:8103', MEDPLUM_CLIENT_ID: 'id', MEDPLUM_CLIENT_SECRET: 'secret' },
    build,
    sleep: async () => undefined,
  };
}
