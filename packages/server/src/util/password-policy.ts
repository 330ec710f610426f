import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { MagpieError } from '@magpie/protocol';

/** Only this many leading characters are estimated: matching is superlinear and a long password is not the weak case. */
const ESTIMATE_CHARS = 64;
/** Checks waiting for the estimator; beyond it `unavailable` (a register flood must not queue without bound). */
const MAX_PENDING = 256;
/**
 * The thread's own V8 heap, bounded: with V8's defaults its young generation grew to ~70 MB
 * over 64 checks (heap 105 MB, RSS +127 MB); with 2 MB it stays at ~40 MB (RSS +58 MB) for
 * the same work. The dictionaries need ~35 MB of old generation.
 */
const RESOURCE_LIMITS = { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 128 };
/** The thread stops after this long without a check (it holds ~45 MB); the next check starts it again (~0.4 s of CPU, off the event loop). */
const IDLE_STOP_MS = 120_000;

/**
 * The estimator runs on its own thread: building it (importing and indexing several MB of
 * common passwords, names and words) takes ~0.4 s of CPU and one check 2–100 ms, which must
 * not stall the event loop (sockets, timers) at start or under a register flood. Plain
 * CommonJS, no TypeScript loader needed.
 */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { ZxcvbnFactory } = require(workerData.core);
const common = require(workerData.common);
const en = require(workerData.en);
const z = new ZxcvbnFactory({
  dictionary: { ...common.dictionary, ...en.dictionary },
  graphs: common.adjacencyGraphs,
  translations: en.translations,
});
parentPort.on('message', ({ id, password, inputs }) => {
  try {
    const r = z.check(password, inputs);
    parentPort.postMessage({ id, score: r.score, warning: r.feedback.warning, suggestion: r.feedback.suggestions[0] ?? null });
  } catch (err) {
    parentPort.postMessage({ id, error: String(err) });
  }
});
`;

interface Verdict {
  id: number;
  score?: number;
  warning?: string | null;
  suggestion?: string | null;
  error?: string;
}

class Estimator {
  private worker: Worker | null = null;
  private nextId = 1;
  private idle: NodeJS.Timeout | undefined;
  private readonly pending = new Map<number, { resolve: (v: Verdict) => void; reject: (e: Error) => void }>();

  check(password: string, inputs: string[]): Promise<Verdict> {
    if (this.pending.size >= MAX_PENDING) {
      return Promise.reject(new MagpieError('unavailable', 'too many password checks in progress; retry shortly', { retryAfterMs: 1000 }));
    }
    const w = this.start();
    if (this.idle) clearTimeout(this.idle);
    this.idle = undefined;
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      w.postMessage({ id, password, inputs });
      w.ref(); // keep the process alive while a check is in flight
    });
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const req = createRequire(import.meta.url);
    const w = new Worker(WORKER, {
      eval: true,
      workerData: { core: req.resolve('@zxcvbn-ts/core'), common: req.resolve('@zxcvbn-ts/language-common'), en: req.resolve('@zxcvbn-ts/language-en') },
      execArgv: [],
      resourceLimits: RESOURCE_LIMITS,
    });
    w.unref();
    w.on('message', (v: Verdict) => {
      const p = this.pending.get(v.id);
      this.pending.delete(v.id);
      if (this.pending.size === 0) {
        w.unref();
        this.idle = setTimeout(() => this.stopIdle(w), IDLE_STOP_MS);
        this.idle.unref();
      }
      p?.resolve(v);
    });
    const fail = (err: Error) => {
      if (this.worker === w) this.worker = null;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    w.on('error', fail);
    w.on('exit', () => fail(new Error('password estimator exited')));
    this.worker = w;
    return w;
  }

  /** Idle: give the thread's memory back; a later check starts a new one. */
  private stopIdle(w: Worker): void {
    this.idle = undefined;
    if (this.worker !== w || this.pending.size > 0) return;
    this.worker = null;
    void w.terminate();
  }
}

const estimator = new Estimator();

/**
 * Refuse passwords an attacker guesses early: zxcvbn-ts (common-password lists, names,
 * words, keyboard patterns, repeats, sequences, dates) must score at least `minScore`
 * (0–4; 2 ≈ more than 10^6 guesses). The username and nickname count as known words.
 * Throws `weak_password` with zxcvbn's human reason.
 */
export async function checkPasswordStrength(password: string, minScore: number, userInputs: string[] = []): Promise<void> {
  if (minScore <= 0) return;
  const r = await estimator.check(password.slice(0, ESTIMATE_CHARS), userInputs.filter((s) => s.length > 0));
  if (r.error !== undefined || r.score === undefined) throw new Error(`password estimator failed: ${r.error}`);
  if (r.score >= minScore) return;
  const reason = r.warning || 'This password is too easy to guess.';
  throw new MagpieError('weak_password', r.suggestion ? `${reason} ${r.suggestion}` : reason, { details: { score: r.score, minScore } });
}

/** Start the estimator's thread now (it builds its dictionaries there), not inside the first register. */
export function warmPasswordPolicy(): void {
  void estimator.check('warm-up', []).catch(() => {});
}
