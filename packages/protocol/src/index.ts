export * from './errors.ts';
export * from './kinds.ts';
export * from './types.ts';
export * from './frames.ts';
export * from './server-frames.ts';
export * from './codec.ts';
export * from './redpacket.ts';
export * from './social.ts';
