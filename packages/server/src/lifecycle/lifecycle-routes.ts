import { lifecycleRoutes as R } from '@magpie/protocol';
import type { RestApi } from '../http/rest.ts';
import type { LifecycleService } from './lifecycle-service.ts';

/** REST routes of the message lifecycle, all authenticated (schemas and paths: @magpie/protocol rest/lifecycle.ts). */
export function registerLifecycleRoutes(api: RestApi, deps: { lifecycle: LifecycleService }): void {
  const { lifecycle: l } = deps;
  api.route(R.recall, async ({ principal, params }) => l.recall(principal, params.conv, params.seq));
  api.route(R.edit, async ({ principal, params, body }) => l.edit(principal, params.conv, params.seq, body.text));
  api.route(R.edits, async ({ principal, params }) => l.editVersions(principal.userId, params.conv, params.seq));
  api.route(R.react, async ({ principal, params }) => l.react(principal, params.conv, params.seq, params.emoji, true));
  api.route(R.unreact, async ({ principal, params }) => l.react(principal, params.conv, params.seq, params.emoji, false));
  api.route(R.reactions, async ({ principal, params, query }) => l.reactions(principal.userId, params.conv, query.seqs));
  api.route(R.hide, async ({ principal, params, body }) => l.hide(principal, params.conv, body.seqs));
  api.route(R.hidden, async ({ principal, query }) => l.hiddenChanges(principal.userId, query.since, query.limit));
  api.route(R.forward, async ({ principal, body }) => l.forward(principal, body));
}
