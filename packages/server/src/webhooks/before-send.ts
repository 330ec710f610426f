import { MagpieError, validateMessageBody } from '@magpie/protocol';
import type { Logger } from 'pino';
import type { BodyHook } from '../services/message-service.ts';
import type { WebhookConfig } from '../config/webhooks-config.ts';
import { postSigned } from './signature.ts';

/** What a before-send hook answers (HTTP 200, JSON). Anything else counts as a failure of the hook. */
type Verdict = { action: 'allow' } | { action: 'deny'; reason?: string } | { action: 'modify'; body: unknown };

function parseVerdict(json: unknown): Verdict | null {
  if (typeof json !== 'object' || json === null) return null;
  const v = json as Record<string, unknown>;
  if (v.action === 'allow') return { action: 'allow' };
  if (v.action === 'deny') return { action: 'deny', ...(typeof v.reason === 'string' ? { reason: v.reason.slice(0, 200) } : {}) };
  if (v.action === 'modify' && 'body' in v) return { action: 'modify', body: v.body };
  return null;
}

export interface BeforeSendStats {
  inc(labels: { hook: string; outcome: 'allow' | 'deny' | 'modify' | 'fail_open' | 'fail_closed' }): void;
}

/**
 * A before-send webhook as a message body hook: the operator's service gets the message
 * (sender, conversation, kind, body) signed, and answers allow, deny (with a reason the sender
 * sees, error `rejected`) or modify (a new body, validated like a client's). A timeout, a
 * network error, a non-200 answer or an unreadable one is a failure: the hook's failMode
 * decides (`open`: the message goes through unchanged; `closed`: `unavailable`, retryable).
 */
export function beforeSendHook(hook: WebhookConfig, log: Logger, stats: BeforeSendStats, now: () => number = Date.now): BodyHook {
  return async (sender, kind, body, conv, messageId) => {
    const payload = JSON.stringify({ event: 'message.before_send', time: now(), data: { messageId, sender, conv, kind, body } });
    let verdict: Verdict | null = null;
    let failure = '';
    try {
      const res = await postSigned(hook.url, hook.secret, 'message.before_send', payload, hook.timeoutMs, now());
      verdict = res.status === 200 ? parseVerdict(res.json) : null;
      if (!verdict) failure = `answer ${res.status}`;
    } catch (err) {
      failure = (err as Error).name === 'TimeoutError' ? `no answer in ${hook.timeoutMs} ms` : (err as Error).message;
    }
    if (!verdict) {
      log.warn({ hook: hook.name, failure, failMode: hook.failMode }, 'before-send webhook failed');
      stats.inc({ hook: hook.name, outcome: hook.failMode === 'open' ? 'fail_open' : 'fail_closed' });
      if (hook.failMode === 'open') return body;
      throw new MagpieError('unavailable', 'message moderation is unavailable; try again shortly', { retryAfterMs: 2000 });
    }
    if (verdict.action !== 'modify') stats.inc({ hook: hook.name, outcome: verdict.action });
    if (verdict.action === 'allow') return body;
    if (verdict.action === 'deny') throw new MagpieError('rejected', verdict.reason || 'This message was not accepted.');
    try {
      const modified = validateMessageBody(kind, verdict.body);
      stats.inc({ hook: hook.name, outcome: 'modify' });
      return modified;
    } catch (err) {
      // A hook that returns a body the kind does not accept is a broken hook, not the sender's fault.
      log.warn({ hook: hook.name, err: (err as Error).message }, 'before-send webhook returned an invalid body');
      stats.inc({ hook: hook.name, outcome: hook.failMode === 'open' ? 'fail_open' : 'fail_closed' });
      if (hook.failMode === 'open') return body;
      throw new MagpieError('unavailable', 'message moderation is unavailable; try again shortly', { retryAfterMs: 2000 });
    }
  };
}
