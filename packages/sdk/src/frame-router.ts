import type { ConvEntry, InboxItem, Message } from '@magpie/protocol';
import type { MagpieClientError } from './errors.ts';
import type { Instruction } from './instructions.ts';
import { errorFromFrame, type RawFrame } from './transport/connection.ts';
import type { DeliveredFrame, KickedFrame } from './wire.ts';

/** One handler per server frame type; each frame is checked here, so handlers get typed values. */
export interface FrameHandlers {
  /** An inbox push (write diffusion). */
  msg(item: InboxItem): void;
  /** A super-group message (read diffusion, no inbox pointer). */
  advanced(message: Message): void;
  conv(entry: ConvEntry): void;
  delivered(d: DeliveredFrame): void;
  deliveredCounts(conv: string, pairs: [number, number][]): void;
  /** A pong that carries the server's inbox position. */
  pong(inboxSeq: number): void;
  kicked(k: KickedFrame): void;
  instruction(i: Instruction): void;
  error(e: MagpieClientError): void;
  /** Frames for other modules (relation) and of later protocol versions. */
  other(f: { type: string; [key: string]: unknown }): void;
}

/** Data frames that must wait for the welcome to be processed (they need the sync queued first). */
const HELD: ReadonlySet<string> = new Set(['msg', 'conv', 'delivered', 'delivered.counts', 'advanced']);

/**
 * Inbound frame routing: one frame goes to the one part that owns its type. Between a new
 * socket and its welcome, data frames are held and replayed in order by `release()`.
 * Malformed frames are dropped here.
 */
export class FrameRouter {
  private holding = true;
  private early: RawFrame[] = [];

  constructor(private readonly handlers: FrameHandlers) {}

  /** A new socket: hold data frames until `release()`; anything held for an older one is dropped. */
  hold(): void {
    this.holding = true;
    this.early = [];
  }

  /** The welcome is processed: replay what was held, then route directly. */
  release(): void {
    this.holding = false;
    const early = this.early;
    this.early = [];
    for (const f of early) this.route(f);
  }

  route(f: RawFrame): void {
    if (this.holding && HELD.has(f.type as string)) {
      this.early.push(f);
      return;
    }
    const h = this.handlers;
    switch (f.type) {
      case 'msg':
        if (typeof f.inboxSeq === 'number' && isMessage(f.message)) h.msg({ inboxSeq: f.inboxSeq, message: f.message });
        break;
      case 'advanced':
        if (typeof f.seq === 'number' && isMessage(f.message)) h.advanced(f.message);
        break;
      case 'conv': {
        const entry = f.entry as ConvEntry | undefined;
        if (entry && typeof entry.conv === 'string' && typeof entry.version === 'number') h.conv(entry);
        break;
      }
      case 'delivered': {
        const d = f as unknown as DeliveredFrame;
        if (typeof d.conv === 'string' && typeof d.seq === 'number') h.delivered(d);
        break;
      }
      case 'delivered.counts': {
        const pairs = Array.isArray(f.counts) ? (f.counts as unknown[]).filter(isCountPair) : [];
        if (typeof f.conv === 'string' && pairs.length > 0) h.deliveredCounts(f.conv, pairs);
        break;
      }
      case 'pong':
        if (typeof f.inboxSeq === 'number') h.pong(f.inboxSeq);
        break;
      case 'kicked':
        h.kicked(f as unknown as KickedFrame);
        break;
      case 'instruction':
        h.instruction(f as unknown as Instruction);
        break;
      case 'error':
        h.error(errorFromFrame(f));
        break;
      default:
        if (typeof f.type === 'string') h.other(f as { type: string; [key: string]: unknown });
        break;
    }
  }
}

function isCountPair(x: unknown): x is [number, number] {
  return Array.isArray(x) && x.length === 2 && Number.isInteger(x[0]) && Number.isInteger(x[1]);
}

export function isMessage(x: unknown): x is Message {
  const m = x as Message | null;
  return !!m && typeof m === 'object' && typeof m.conv === 'string' && typeof m.seq === 'number' && typeof m.clientMsgId === 'string';
}
