import { toMessage } from './rows.ts';
import type { AppendOutcome, AppendRequest, InboxPointer } from './store.ts';

/**
 * How an append batch and its outcomes cross between the event loop and the SQLite writer
 * thread (store/sqlite-writer.ts). postMessage clones objects property by property, names
 * included, and the receiving side builds every object again: for a batch of plain 1:1
 * messages that was several µs per message on each thread, on the event loop included. So the
 * common case travels as columns — arrays of strings and of numbers — and only what is rare
 * (a group effect, mentions, a body without its JSON, an outcome that is not "stored as sent")
 * as objects beside them.
 *
 * - A request: sender, clientMsgId, conv, kind, id, bodyJson and the direct members as strings,
 *   its time as a number. A request with bodyJson arrives on the thread without its body
 *   (`body` undefined): the SQLite append writes bodyJson and never reads the body (search
 *   documents are the deferred indexer's, from the stored row; a duplicate's body is the stored
 *   one), and parsing it there cost ~0.7 µs per message of the thread's CPU (issue 23); the
 *   outcomes carry no body back for it either (below). A request without bodyJson sends its body.
 * - An outcome that is a new message stored as the request asked (ok, not a duplicate, no
 *   effect, no epoch, the message being `toMessage(request, seq)` with the request's body):
 *   its seq and its pointers (user, inboxSeq). The event loop rebuilds it with toMessage and the
 *   request's own body object (callers recognise "stored as sent" by identity). Any other
 *   outcome goes whole.
 */

/** Strings per request in WireBatch.s. */
const S = 8;

export interface WireBatch {
  n: number;
  /** Per request: sender, clientMsgId, conv, kind, id, bodyJson ('' = in `rare`), directMembers[0], [1] ('' = none). */
  s: string[];
  time: Float64Array;
  /** Index → the request's rare fields (body without bodyJson, effect, mentions). */
  rare: Record<number, Pick<AppendRequest, 'body' | 'effect' | 'mentions'>> | null;
}

export function encodeBatch(batch: AppendRequest[]): WireBatch {
  // Built by appending, never as `new Array(n)`: a holey array (even once every element is
  // set) is cloned as a sparse one — its keys collected and each element looked up by name —
  // and arrives as a dictionary; a packed one is written element by element. Measured with a
  // 122-message batch: postMessage ~90 µs holey, ~40 µs packed (issue 23, branch lp23).
  const s: string[] = [];
  const time = new Float64Array(batch.length);
  let rare: WireBatch['rare'] = null;
  for (let i = 0; i < batch.length; i++) {
    const r = batch[i]!;
    const dm = r.directMembers;
    s.push(r.sender, r.clientMsgId, r.conv, r.kind, r.id, r.bodyJson ?? '', dm ? dm[0] : '', dm ? dm[1] : '');
    time[i] = r.time;
    if (r.bodyJson === undefined || r.effect !== undefined || r.mentions !== undefined) {
      const x: Pick<AppendRequest, 'body' | 'effect' | 'mentions'> = { body: r.bodyJson === undefined ? r.body : undefined };
      if (r.effect !== undefined) x.effect = r.effect;
      if (r.mentions !== undefined) x.mentions = r.mentions;
      (rare ??= {})[i] = x;
    }
  }
  return { n: batch.length, s, time, rare };
}

export function decodeBatch(w: WireBatch): AppendRequest[] {
  const out: AppendRequest[] = new Array(w.n);
  for (let i = 0; i < w.n; i++) {
    const k = i * S;
    const x = w.rare?.[i];
    const bodyJson = w.s[k + 5]!;
    const r: AppendRequest = {
      sender: w.s[k]!,
      clientMsgId: w.s[k + 1]!,
      conv: w.s[k + 2]!,
      kind: w.s[k + 3]!,
      body: bodyJson !== '' ? undefined : x?.body,
      time: w.time[i]!,
      id: w.s[k + 4]!,
    };
    if (bodyJson !== '') r.bodyJson = bodyJson;
    if (w.s[k + 6] !== '') r.directMembers = [w.s[k + 6]!, w.s[k + 7]!];
    if (x?.effect !== undefined) r.effect = x.effect;
    if (x?.mentions !== undefined) r.mentions = x.mentions;
    out[i] = r;
  }
  return out;
}

export interface WireOutcomes {
  n: number;
  /** Per outcome: the new message's seq; -1 = the outcome is in `whole`. */
  seq: Float64Array;
  /** Per outcome: how many pointers it has in pu/ps. */
  pc: Uint32Array;
  pu: string[];
  ps: number[];
  /** Index → an outcome sent whole (its message body null when it is the request's body). */
  whole: Record<number, { outcome: AppendOutcome; sameBody: boolean }> | null;
}

const MESSAGE_KEYS = 8;

/** Whether `o` is exactly what `decodeOutcomes` rebuilds from `r` and a seq. */
function storedAsSent(o: AppendOutcome, r: AppendRequest): boolean {
  if (!o.ok || o.duplicate || o.effect !== undefined || o.epoch !== undefined) return false;
  const m = o.message;
  return (
    m.body === r.body &&
    m.id === r.id &&
    m.conv === r.conv &&
    m.sender === r.sender &&
    m.kind === r.kind &&
    m.time === r.time &&
    m.clientMsgId === r.clientMsgId &&
    Object.keys(m).length === MESSAGE_KEYS &&
    Object.keys(o).length === 4
  );
}

/** On the thread: `outcomes` of `batch` (the requests as decoded there). */
export function encodeOutcomes(batch: AppendRequest[], outcomes: AppendOutcome[]): WireOutcomes {
  const seq = new Float64Array(outcomes.length);
  const pc = new Uint32Array(outcomes.length);
  const pu: string[] = [];
  const ps: number[] = [];
  let whole: WireOutcomes['whole'] = null;
  for (let i = 0; i < outcomes.length; i++) {
    const o = outcomes[i]!;
    const r = batch[i]!;
    if (o.ok && storedAsSent(o, r)) {
      seq[i] = o.message.seq;
      pc[i] = o.pointers.length;
      for (const p of o.pointers) {
        pu.push(p.userId);
        ps.push(p.inboxSeq);
      }
      continue;
    }
    seq[i] = -1;
    const sameBody = o.ok && !o.duplicate && o.message.body === r.body;
    // The event loop puts its own body object back: no need to copy it across.
    (whole ??= {})[i] = { outcome: sameBody ? { ...o, message: { ...o.message, body: null } } : o, sameBody };
  }
  return { n: outcomes.length, seq, pc, pu, ps, whole };
}

/** On the event loop: the outcomes of `batch` (the caller's own requests). */
export function decodeOutcomes(batch: AppendRequest[], w: WireOutcomes): AppendOutcome[] {
  const out: AppendOutcome[] = new Array(w.n);
  let p = 0;
  for (let i = 0; i < w.n; i++) {
    const r = batch[i]!;
    const seq = w.seq[i]!;
    if (seq < 0) {
      const x = w.whole![i]!;
      const o = x.outcome;
      if (x.sameBody && o.ok) o.message.body = r.body;
      out[i] = o;
      continue;
    }
    const n = w.pc[i]!;
    const pointers: InboxPointer[] = new Array(n);
    for (let j = 0; j < n; j++, p++) pointers[j] = { userId: w.pu[p]!, inboxSeq: w.ps[p]! };
    out[i] = { ok: true, duplicate: false, message: toMessage(r, seq), pointers };
  }
  return out;
}
