import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type GcFunction = (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

/**
 * Collects the garbage of start-up once, with V8's memory-reducing collection, and gives the
 * freed pages back to the system.
 *
 * Loading the modules, parsing the protos and building the Nest application leave about 20 MiB
 * of dead objects in the old generation. V8 collects the old generation only when it grows past
 * a limit that an idle service never reaches, and its memory reducer only starts after such a
 * collection: without this, that garbage stays resident for the process's life. Run once before
 * the service answers, it costs about 0.1 s of start-up and nothing afterwards.
 *
 * V8's `gc` is taken from a fresh context created while `--expose-gc` is set, then the flag is
 * cleared again: no global `gc` is exposed to the service's code.
 */
export function compactHeapAfterStartUp(): void {
  let gc: unknown = (globalThis as { gc?: unknown }).gc; // node --expose-gc
  if (typeof gc !== 'function') {
    setFlagsFromString('--expose-gc');
    try {
      gc = runInNewContext('typeof gc === "function" ? gc : undefined');
    } finally {
      setFlagsFromString('--no-expose-gc');
    }
  }
  // A Node that refuses the flag still runs the service, only without this collection.
  if (typeof gc === 'function') {
    (gc as GcFunction)({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  }
}
