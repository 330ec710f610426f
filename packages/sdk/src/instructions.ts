import type { InstructionFrame } from '@magpie/protocol';

/** An instruction as the SDK receives it (live, or in the hello reply). */
export type Instruction = Omit<InstructionFrame, 'type'>;

/** What executing an instruction needs from the client. */
export interface InstructionHost {
  /** Forget the inbox position and local history; the next sync is a full one. */
  resetLocalData(): Promise<void>;
  /** The client's state for `upload_diagnostics`. */
  diagnostics(): Promise<Record<string, unknown>>;
  /** Store a configuration value sent by the server. */
  setConfig(key: string, value: unknown): void;
}

/**
 * Execute one instruction. Unknown kinds (from a newer server) are reported as not done,
 * never guessed at. Returns what the device reports back in `instruction.result`.
 */
export async function executeInstruction(i: Instruction, host: InstructionHost): Promise<{ ok: boolean; result: unknown }> {
  switch (i.kind) {
    case 'force_full_sync':
    case 'clear_cache':
      await host.resetLocalData();
      return { ok: true, result: { cleared: true } };
    case 'upload_diagnostics':
      return { ok: true, result: await host.diagnostics() };
    case 'set_config': {
      const p = i.payload as { key?: unknown; value?: unknown } | null;
      if (!p || typeof p.key !== 'string') return { ok: false, result: { error: 'payload needs a string key' } };
      host.setConfig(p.key, p.value);
      return { ok: true, result: { key: p.key } };
    }
    default:
      return { ok: false, result: { error: `unknown instruction kind: ${String((i as { kind: unknown }).kind)}` } };
  }
}
