import { runReceiptsE2e } from './receipts-e2e-suite.ts';

runReceiptsE2e('sqlite', async () => ({}));
