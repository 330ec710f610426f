import { runWebhooksE2E } from './webhooks-e2e-suite.ts';

runWebhooksE2E('SQLite', async () => ({ env: {}, cleanup: async () => {} }));
