/**
 * Load a public entry point of Magpie (`@magpie/server`, `@magpie/server/testing`, …) as a
 * given checkout resolves it: its own node_modules/@magpie/* link to its own packages, and the
 * package's `exports` pick the compiled file. Benches that compare two builds in one process
 * (bench/writer-thread-cpu.ts, bench/send-path-cpu.mjs, bench/fanout-flush.mjs) go through this,
 * never through a path into a package's dist/ or src/ (test/bench-imports.test.ts).
 *
 *   const server = await importFromTree('/tmp/magpie-alternate/<sha>', '@magpie/server');
 */
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

/** `spec` resolved from `tree` (a checkout's root directory) and imported. */
export async function importFromTree(tree, spec) {
  const require = createRequire(join(resolve(tree), 'package.json'));
  let file;
  try {
    file = require.resolve(spec);
  } catch (err) {
    throw new Error(`${spec} is not exported by the checkout at ${tree} (built? the export added later than that commit?): ${err.message}`);
  }
  return import(pathToFileURL(file).href);
}
