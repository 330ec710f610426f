#!/usr/bin/env node
/**
 * The server's launch settings (launch.json next to this file): node flags and environment
 * defaults for the process that runs dist/main.js.
 *
 *   node packages/server/launch.mjs --sh   prints a POSIX shell command that exports the
 *                                          environment defaults not already set and then
 *                                          `exec`s node with the flags on dist/main.js
 *
 * `npm start` evals that output, so the server replaces the shell (no extra process, and the
 * pid a supervisor sees is the server's). The Docker image carries the same settings as ENV
 * (NODE_OPTIONS for the flags), checked against launch.json by test/launch.test.ts.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const HERE = new URL('.', import.meta.url);

/** launch.json: { nodeArgs: string[], env: Record<string, string> }. */
export function readLaunch() {
  const j = JSON.parse(readFileSync(new URL('launch.json', HERE), 'utf8'));
  return { nodeArgs: [...(j.nodeArgs ?? [])], env: { ...(j.env ?? {}) } };
}

const q = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;

/** The shell command `npm start` evals (environment defaults only where `env` has none). */
export function shellCommand(env = process.env) {
  const { nodeArgs, env: defaults } = readLaunch();
  const exports = Object.entries(defaults).filter(([k]) => env[k] === undefined || env[k] === '');
  const main = fileURLToPath(new URL('dist/main.js', HERE));
  const lines = [];
  if (exports.length) lines.push(`export ${exports.map(([k, v]) => `${k}=${q(v)}`).join(' ')}`);
  lines.push(`exec ${[process.execPath, ...nodeArgs, main].map(q).join(' ')}`);
  return lines.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  if (process.argv[2] === '--sh') process.stdout.write(shellCommand() + '\n');
  else {
    process.stderr.write('usage: node packages/server/launch.mjs --sh   (npm start: eval "$(node packages/server/launch.mjs --sh)")\n');
    process.exit(2);
  }
}
