export * from './route.ts';
export * from './accounts.ts';
export * from './groups.ts';
export * from './social.ts';
export * from './wallet.ts';
export * from './media.ts';
