import { MemoryBus } from '../src/bus/memory-bus.ts';
import { runBusContract } from './bus-contract.ts';

/** The in-process Bus: one node, which receives every event. */
runBusContract('memory (one node)', { cluster: false, open: async () => new MemoryBus() });
