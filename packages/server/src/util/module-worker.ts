import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * Start a worker thread on the module `name` next to `from` (the caller's import.meta.url),
 * `.ts` or `.js` as the caller itself was loaded. From source (tests, start:dev) the entry is
 * TypeScript: the thread registers tsx's loader itself (the parent's --import hooks do not
 * reach a worker's entry), then imports it.
 */
export function startModuleWorker(from: string, name: string, options: WorkerOptions): Worker {
  const ext = from.endsWith('.ts') ? '.ts' : '.js';
  const entry = new URL(`./${name}${ext}`, from);
  return ext === '.ts'
    ? new Worker(`import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((t) => { t.register(); return import(${JSON.stringify(entry.href)}); })`, { ...options, eval: true })
    : new Worker(entry, options);
}
