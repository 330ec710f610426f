/**
 * InstructionStore: server → client commands and their audit trail. One implementation on the
 * shared engine (sql-instruction-store.ts), on SQLite or PostgreSQL; tables in db/migrations.
 *
 * Guarantees: an instruction and its per-device targets are written in one transaction;
 * a target's status only moves forward (pending → delivered → done | failed); every
 * instruction stays readable as an audit record with its targets' outcomes.
 */
export interface InstructionStore {
  close(): Promise<void>;
  create(instr: InstructionRecord, deviceIds: string[]): Promise<void>;
  /** Instructions for this device that it has not completed, oldest first. */
  pendingFor(userId: string, deviceId: string): Promise<InstructionRecord[]>;
  markDelivered(instructionId: string, userId: string, deviceId: string, at: number): Promise<void>;
  /** Record the device's report; false when there is no such target or it is already complete. */
  complete(instructionId: string, userId: string, deviceId: string, ok: boolean, result: unknown, at: number): Promise<boolean>;
  /** Audit: instructions of a user, newest first, with every target's outcome. */
  /** Newest first: one user's instructions, or everyone's when userId is undefined (the console's log). */
  audit(userId: string | undefined, limit: number): Promise<InstructionAudit[]>;
}

export { INSTRUCTION_KINDS } from '@magpie/protocol';
import type { INSTRUCTION_KINDS } from '@magpie/protocol';
export type InstructionKind = (typeof INSTRUCTION_KINDS)[number];

export interface InstructionRecord {
  id: string;
  userId: string;
  kind: InstructionKind;
  payload: unknown;
  createdAt: number;
  /** Who issued it (operator note or id). */
  issuedBy: string;
}

export interface InstructionTarget {
  deviceId: string;
  status: 'pending' | 'delivered' | 'done' | 'failed';
  deliveredAt: number | null;
  completedAt: number | null;
  result: unknown;
}

export interface InstructionAudit extends InstructionRecord {
  targets: InstructionTarget[];
}

interface Row {
  id: string;
  user_id: string;
  kind: string;
  payload: string;
  created_at: number | string;
  issued_by: string;
}

export function instructionFromRow(r: Row): InstructionRecord {
  return {
    id: r.id,
    userId: r.user_id,
    kind: r.kind as InstructionKind,
    payload: JSON.parse(r.payload) as unknown,
    createdAt: Number(r.created_at),
    issuedBy: r.issued_by,
  };
}

export function targetFromRow(r: { device_id: string; status: string; delivered_at: number | string | null; completed_at: number | string | null; result: string | null }): InstructionTarget {
  return {
    deviceId: r.device_id,
    status: r.status as InstructionTarget['status'],
    deliveredAt: r.delivered_at === null ? null : Number(r.delivered_at),
    completedAt: r.completed_at === null ? null : Number(r.completed_at),
    result: r.result === null ? null : (JSON.parse(r.result) as unknown),
  };
}
