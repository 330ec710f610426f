import { runNotificationRetentionE2E, runNotificationsE2E } from './notifications-e2e-suite.ts';

const sqlite = async () => ({ env: {}, cleanup: async () => {} });
runNotificationsE2E('SQLite', sqlite);
runNotificationRetentionE2E('SQLite', sqlite);
