/** `node:http`'s lazy getters that load Node's bundled undici (fetch, WebSocket) when read. */
const UNDICI_GETTERS = ['WebSocket', 'CloseEvent', 'MessageEvent'] as const;

/**
 * Runs `load` with `node:http`'s WebSocket, CloseEvent and MessageEvent getters removed, then puts
 * them back as they were: only what `load` sees is changed.
 *
 * The first ES module importing `node:http` (Nest's core does) makes Node build that module's ES
 * namespace, which reads every export once, and reading these three loads undici, with zlib,
 * web streams, web crypto and performance hooks behind it: about 14 MiB of resident memory for
 * the process's life, for classes nothing here uses. Built while they are absent, the namespace
 * holds `undefined` for them; `require('node:http').WebSocket` still loads them at first use.
 */
export function withoutHttpWebSocketExports<T>(load: () => T): T {
  // The module's own exports object: an `import * as` of it would be a copy.
  const module = process.getBuiltinModule('node:http') as unknown as Record<string, unknown>;
  const saved = new Map<string, PropertyDescriptor>();
  for (const key of UNDICI_GETTERS) {
    const descriptor = Object.getOwnPropertyDescriptor(module, key);
    if (descriptor?.configurable !== true || descriptor.get === undefined) continue;
    saved.set(key, descriptor);
    delete module[key];
  }
  try {
    return load();
  } finally {
    for (const [key, descriptor] of saved) Object.defineProperty(module, key, descriptor);
  }
}
