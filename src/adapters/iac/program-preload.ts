import { randomBytes } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Loaded (`--require`) into every Node.js process a nodejs scenario runs in: the program, and the
 * dynamic-resource provider. It makes `util.inspect` ignore `colors`.
 *
 * Why: when a program throws, `@pulumi/pulumi` (cmd/run/error.ts, `defaultErrorMessage`) prints
 * the error with `util.inspect(err, { colors: true })`. The SDK's source maps place its top-level
 * files at `node_modules/@pulumi/<file>.ts` (one directory too high), so the stack holds frames
 * such as `…/node_modules/@pulumi/resource.ts:1598:22`. From Node.js 20.19.6 until the fix of
 * nodejs/node#64011 (Node 20 never got it; 24.22.3 has it), the colouring of `node_modules` names
 * in error stacks loops on a scoped name with nothing after it, growing a string until V8 refuses
 * it: about a minute of CPU and gigabytes of memory before the SDK falls back to
 * `util.inspect(err)` and reports the error. Colours are of no use here (the output goes to logs,
 * never to a terminal), so they are dropped and the error is reported at once, with the same
 * text. On a Node with the fix this changes nothing but the colours.
 *
 * ES modules importing `inspect` from `node:util` see the same function
 * (`syncBuiltinESMExports`). Kept in plain CommonJS: Node loads it as is.
 *
 * In the dynamic-resource provider it also ends the process once the Pulumi engine that started
 * it is gone. The CLI kills its plugins when it exits, but a CLI that is killed (the OOM killer,
 * `kill -9` of the service and its process group) cannot, and Pulumi starts each plugin in a
 * process group of its own. Pulumi's Go providers then notice the engine is gone
 * (`rpcutil.Healthcheck` in the Go SDK's `provider.Main`) and stop; `@pulumi/pulumi`'s
 * `cmd/dynamic-provider` never looks, so it served on forever, one more process per killed
 * operation. Here it tries a TCP connection to the engine's address (its first argument) every
 * second and exits when the connection is refused: the engine's port closes with its process.
 * Resources the provider started on their own (a flag server, detached) are not its children to
 * end: they live until their stack is destroyed.
 */
export const PROGRAM_PRELOAD = `'use strict';
// chall-manager: util.inspect without colours in scenario processes (see the service's
// src/adapters/iac/program-preload.ts for why).
const util = require('node:util');
const { syncBuiltinESMExports } = require('node:module');
util.inspect = new Proxy(util.inspect, {
  apply(target, thisArg, args) {
    const options = args[1];
    if (options !== null && typeof options === 'object' && options.colors) {
      args[1] = { ...options, colors: false };
    } else if (args.length >= 4 && args[3]) {
      // The legacy signature: inspect(value, showHidden, depth, colors).
      args[3] = false;
    }
    return Reflect.apply(target, thisArg, args);
  },
});
syncBuiltinESMExports();

// chall-manager: the dynamic provider stops once its engine is gone (same file, for why).
const main = process.argv[1];
const engine = process.argv[2];
if (
  main && engine &&
  (main.endsWith('/cmd/dynamic-provider') || main.endsWith('/cmd/dynamic-provider/index.js'))
) {
  const net = require('node:net');
  const at = engine.lastIndexOf(':');
  const bracketed = engine.startsWith('[');
  const host = engine.slice(bracketed ? 1 : 0, bracketed ? at - 1 : at);
  const port = Number(engine.slice(at + 1));
  setInterval(() => {
    const probe = net.connect({ host, port });
    probe.setTimeout(5000, () => probe.destroy());
    probe.once('connect', () => probe.destroy());
    probe.once('error', (err) => {
      if (err.code !== 'ECONNREFUSED') return;
      console.error('chall-manager: the Pulumi engine at ' + engine + ' is gone; exiting');
      process.exit(1);
    });
  }, 1000).unref();
}
`;

/** Writes {@link PROGRAM_PRELOAD} under `dir` (atomically: replicas may share CACHE); its path.
 * Owner-only like the rest of CACHE: scenario processes run as the service's user. */
export async function installProgramPreload(dir: string): Promise<string> {
  const path = join(dir, 'program-preload.cjs');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, PROGRAM_PRELOAD, { mode: 0o600 });
  await rename(tmp, path);
  return path;
}

/**
 * `NODE_OPTIONS` for scenario processes: the operator's own options, then the preload. The path
 * is quoted the way Node parses `NODE_OPTIONS` (double quotes, backslash escapes).
 */
export function nodeOptionsWithPreload(current: string | undefined, preload: string): string {
  const quoted = `"${preload.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
  const own = current?.trim() ?? '';
  return `${own === '' ? '' : `${own} `}--require ${quoted}`;
}
