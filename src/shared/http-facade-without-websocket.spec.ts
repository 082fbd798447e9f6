import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { withoutHttpWebSocketExports } from './http-facade-without-websocket';

const http = process.getBuiltinModule('node:http') as unknown as Record<string, unknown>;
const KEYS = ['WebSocket', 'CloseEvent', 'MessageEvent'];

describe('withoutHttpWebSocketExports', () => {
  const original = new Map<string, PropertyDescriptor | undefined>();
  let reads = 0;

  beforeEach(() => {
    // Lazy getters of the test's own, as Node's are until their first read.
    reads = 0;
    for (const key of KEYS) {
      original.set(key, Object.getOwnPropertyDescriptor(http, key));
      Object.defineProperty(http, key, {
        configurable: true,
        enumerable: true,
        get: () => {
          reads++;
          return class {};
        },
      });
    }
  });

  afterEach(() => {
    for (const [key, descriptor] of original) {
      if (descriptor === undefined) delete http[key];
      else Object.defineProperty(http, key, descriptor);
    }
  });

  it('should hide the getters during the load, then restore them unread', () => {
    const before = KEYS.map((key) => Object.getOwnPropertyDescriptor(http, key));
    const seen = withoutHttpWebSocketExports(() => KEYS.map((key) => Object.hasOwn(http, key)));
    expect(seen).toEqual([false, false, false]);
    expect(KEYS.map((key) => Object.getOwnPropertyDescriptor(http, key))).toEqual(before);
    expect(reads).toBe(0);
    expect(typeof http.WebSocket).toBe('function');
    expect(reads).toBe(1);
  });

  it('should restore the getters when the load throws', () => {
    const before = KEYS.map((key) => Object.getOwnPropertyDescriptor(http, key));
    expect(() =>
      withoutHttpWebSocketExports(() => {
        throw new Error('load failed');
      }),
    ).toThrow('load failed');
    expect(KEYS.map((key) => Object.getOwnPropertyDescriptor(http, key))).toEqual(before);
  });

  it('should leave a value that was already read as it is', () => {
    const value = class {};
    Object.defineProperty(http, 'WebSocket', { configurable: true, writable: true, value });
    const seen = withoutHttpWebSocketExports(() => http.WebSocket);
    expect(seen).toBe(value);
  });
});
