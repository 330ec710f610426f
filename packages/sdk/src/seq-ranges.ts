/**
 * Coverage of a conversation's seq space: sorted, disjoint, non-adjacent inclusive ranges
 * of seqs the local store holds completely (every visible message in the range is stored).
 * Anything between two ranges, below the first or above the last is a hole.
 */
export interface SeqRange {
  from: number;
  to: number;
}

/** Add a range, merging overlapping and adjacent ones. Returns a new array. */
export function addRange(ranges: readonly SeqRange[], r: SeqRange): SeqRange[] {
  if (r.to < r.from) return ranges.slice();
  let from = r.from;
  let to = r.to;
  const out: SeqRange[] = [];
  let placed = false;
  for (const x of ranges) {
    if (x.to + 1 < from) out.push(x);
    else if (to + 1 < x.from) {
      if (!placed) {
        out.push({ from, to });
        placed = true;
      }
      out.push(x);
    } else {
      from = Math.min(from, x.from);
      to = Math.max(to, x.to);
    }
  }
  if (!placed) out.push({ from, to });
  return out;
}

export function addRanges(ranges: readonly SeqRange[], add: readonly SeqRange[]): SeqRange[] {
  let out = ranges.slice();
  for (const r of add) out = addRange(out, r);
  return out;
}

/** Drop all coverage at or below `seq`. */
export function removeUpTo(ranges: readonly SeqRange[], seq: number): SeqRange[] {
  const out: SeqRange[] = [];
  for (const x of ranges) {
    if (x.to <= seq) continue;
    out.push(x.from <= seq ? { from: seq + 1, to: x.to } : x);
  }
  return out;
}

export function rangeContaining(ranges: readonly SeqRange[], seq: number): SeqRange | undefined {
  return ranges.find((x) => x.from <= seq && seq <= x.to);
}

/** True when [from, to] lies inside one range (an empty interval is always covered). */
export function covers(ranges: readonly SeqRange[], from: number, to: number): boolean {
  if (to < from) return true;
  const r = rangeContaining(ranges, from);
  return r !== undefined && r.to >= to;
}

/** The holes inside [from, to]. */
export function missing(ranges: readonly SeqRange[], from: number, to: number): SeqRange[] {
  const out: SeqRange[] = [];
  let cursor = from;
  for (const x of ranges) {
    if (x.to < cursor) continue;
    if (x.from > to) break;
    if (x.from > cursor) out.push({ from: cursor, to: Math.min(to, x.from - 1) });
    cursor = Math.max(cursor, x.to + 1);
    if (cursor > to) break;
  }
  if (cursor <= to) out.push({ from: cursor, to });
  return out;
}

export function maxCovered(ranges: readonly SeqRange[]): number {
  const last = ranges[ranges.length - 1];
  return last ? last.to : 0;
}

/**
 * What is held at or below `upTo`, for a catch-up to `upTo`: `upTo` itself when a range covers
 * it, else the end of the highest range below it. Ranges above `upTo` (messages that arrived
 * live after the position was read) do not count: taking their end would hide the gap below them.
 */
export function coveredUpTo(ranges: readonly SeqRange[], upTo: number): number {
  for (let i = ranges.length - 1; i >= 0; i--) {
    const r = ranges[i]!;
    if (r.from > upTo) continue;
    return Math.min(r.to, upTo);
  }
  return 0;
}
