import type { OpenResult, RedPacketClaimedFrame } from '@magpie/protocol';
import type { Logger } from 'pino';
import type { Bus } from '../bus/bus.ts';
import type { WalletStore } from './wallet-store.ts';

/**
 * After a claim commits, tell the packet's sender's devices (`redpacket.claimed`), in the
 * background: the claim is durable and readable through GET /api/redpackets/:id whatever
 * happens to this frame, so a failure here only costs a live notice.
 */
export function claimFrames(wallet: Pick<WalletStore, 'getPacket'>, bus: Pick<Bus, 'publish'>, log?: Logger): (packetId: string, userId: string, result: OpenResult) => void {
  const senders = new Map<string, { sender: string; conv: string }>();
  const publish = (p: { sender: string; conv: string }, packetId: string, userId: string, result: Extract<OpenResult, { result: 'claimed' }>) => {
    const frame: RedPacketClaimedFrame = { type: 'redpacket.claimed', packetId, conv: p.conv, user: userId, amount: result.amount, remainingCount: result.remainingCount };
    bus.publish({ type: 'deliver', userId: p.sender, frame: JSON.stringify(frame) });
  };
  const failed = (packetId: string) => (err: unknown) => log?.warn({ err, packet: packetId }, 'redpacket.claimed frame failed');
  return (packetId, userId, result) => {
    if (result.result !== 'claimed') return;
    const known = senders.get(packetId);
    if (known) {
      // The packet's sender is known (every open after the first): no promise, no read.
      try {
        publish(known, packetId, userId, result);
      } catch (err) {
        failed(packetId)(err);
      }
      return;
    }
    void (async () => {
      const rec = await wallet.getPacket(packetId);
      if (!rec) return;
      const p = { sender: rec.sender, conv: rec.conv };
      if (senders.size >= 10_000) senders.delete(senders.keys().next().value!);
      senders.set(packetId, p);
      publish(p, packetId, userId, result);
    })().catch(failed(packetId));
  };
}
