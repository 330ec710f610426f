import { MagpieError, instructionRoutes, type InstructionFrame } from '@magpie/protocol';
import { z } from 'zod';
import type { Bus } from '../bus/bus.ts';
import type { Store } from '../store/store.ts';
import { timeId } from '../util/ids.ts';
import { type InstructionAudit, type InstructionKind, type InstructionRecord, type InstructionStore } from './instruction-store.ts';

const PAYLOADS: Record<InstructionKind, z.ZodType> = {
  force_full_sync: z.strictObject({ reason: z.string().max(200).optional() }),
  upload_diagnostics: z.strictObject({ reason: z.string().max(200).optional() }),
  clear_cache: z.strictObject({ reason: z.string().max(200).optional() }),
  set_config: z.strictObject({ key: z.string().min(1).max(64), value: z.json() }),
};

/** The body of `POST /api/admin/instructions` (@magpie/protocol rest/ops.ts). */
export const IssueInstruction = instructionRoutes.issue.body;

/**
 * Instructions: typed commands the server sends and the client executes (repair a user's
 * data without a reinstall). Pending ones are handed to a device in its `hello` answer,
 * before any sync, and live to connected devices; each device reports back, and every
 * instruction keeps an audit record of its targets' outcomes.
 */
export class InstructionService {
  constructor(
    private readonly store: InstructionStore,
    private readonly accounts: Store,
    private readonly bus: Bus,
    private readonly now: () => number = Date.now,
  ) {}

  async issue(input: z.infer<typeof IssueInstruction>): Promise<InstructionAudit> {
    const payload = PAYLOADS[input.kind].safeParse(input.payload ?? {});
    if (!payload.success) throw new MagpieError('invalid', `bad payload for ${input.kind}`, { details: payload.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })) });
    if (!(await this.accounts.getUser(input.userId))) throw new MagpieError('not_found', 'no such user');
    const devices = input.deviceId ? [input.deviceId] : [...new Set((await this.accounts.listSessions(input.userId, this.now())).map((s) => s.deviceId))];
    if (devices.length === 0) throw new MagpieError('not_found', 'the user has no device to instruct');
    const record: InstructionRecord = { id: timeId('i'), userId: input.userId, kind: input.kind, payload: payload.data, createdAt: this.now(), issuedBy: input.issuedBy };
    await this.store.create(record, devices);
    this.bus.publish({ type: 'deliver', userId: input.userId, frame: JSON.stringify(toFrame(record)), devices });
    return { ...record, targets: devices.map((deviceId) => ({ deviceId, status: 'pending', deliveredAt: null, completedAt: null, result: null })) };
  }

  /** Pending instructions for a device that is logging in; they are marked delivered. */
  async forLogin(userId: string, deviceId: string): Promise<InstructionFrame[]> {
    const pending = await this.store.pendingFor(userId, deviceId);
    const at = this.now();
    for (const p of pending) await this.store.markDelivered(p.id, userId, deviceId, at);
    return pending.map(toFrame);
  }

  async report(userId: string, deviceId: string, instructionId: string, ok: boolean, result: unknown): Promise<boolean> {
    return this.store.complete(instructionId, userId, deviceId, ok, result, this.now());
  }

  audit(userId: string | undefined, limit = 50): Promise<InstructionAudit[]> {
    return this.store.audit(userId, limit);
  }
}

function toFrame(r: InstructionRecord): InstructionFrame {
  return { type: 'instruction', instructionId: r.id, kind: r.kind, payload: r.payload, createdAt: r.createdAt };
}
