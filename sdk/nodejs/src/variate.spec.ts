import { describe, expect, it } from 'vitest';
import { GoRand } from './go-rand';
import { LOOK_ALIKES, variate, type VariateOptions } from './variate';

/** A small seeded generator (mulberry32): the loops below are the same on every run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const HEX = '0123456789abcdef';
const PRINTABLE = Array.from({ length: 95 }, (_, i) => String.fromCharCode(0x20 + i)).join('');

const randomIdentity = (next: () => number): string =>
  Array.from({ length: 16 }, () => HEX[Math.floor(next() * 16)]).join('');
const randomFlag = (next: () => number, alphabet = PRINTABLE, min = 1, max = 48): string =>
  Array.from(
    { length: min + Math.floor(next() * (max - min + 1)) },
    () => alphabet[Math.floor(next() * alphabet.length)],
  ).join('');

/** Character → the look-alike group it belongs to, and its class there. */
function groupOf(c: string): { group: (typeof LOOK_ALIKES)[number]; cls: string } | undefined {
  for (const group of LOOK_ALIKES) {
    for (const [cls, chars] of Object.entries(group)) if (chars.includes(c)) return { group, cls };
  }
  return undefined;
}

describe('GoRand', () => {
  it("should draw what Go's rand.New(rand.NewSource(seed)).Int() draws", () => {
    // Printed by Go 1.26: r := rand.New(rand.NewSource(seed)); r.Int(), r.Int(), r.Int()
    const expected: [bigint, bigint[]][] = [
      [1n, [5577006791947779410n, 8674665223082153551n, 6129484611666145821n]],
      [0n, [8717895732742165505n, 2259404117704393152n, 6050128673802995827n]],
      [-1n, [3644962268338389676n, 550171362161912239n, 3094056749125766625n]],
    ];
    for (const [seed, draws] of expected) {
      const rand = new GoRand(seed);
      expect(draws.map(() => rand.int())).toEqual(draws);
    }
  });
});

describe('variate', () => {
  it("should give the variants upstream's Go SDK gives", () => {
    // Computed by the Go reference (test/e2e/fixtures/go-variate, Go's own math/rand).
    const flag = 'CTF{typescript_scenarios_vary_their_flags}';
    expect(variate('0123456789abcdef', flag)).toBe('c7F{tYPeScRiPt_SCENaRiO5_vARY_thE1R_flag5}');
    expect(variate('fedcba9876543210', flag)).toBe('CtF{7yPesCr1P7_SC3n4R1Os_VaRY_their_fLag5}');
    expect(variate('0123456789abcdef', 'CTF{bonus}', { special: true })).toBe('CTƒ{bøNµš}');
    expect(variate('a', 'hello world_@', { uppercase: false, special: true })).toBe(
      '#èllØ wÒ®lÐ~å',
    );
    expect(
      variate('ffffffffffffffff', 'The quick brown fox jumps over the lazy dog 0123456789'),
    ).toBe('7H3 Qu1ck BRown f0X JuMPS oVER 7hE LAZY Dog oi2EAs6tb9');
  });

  it('should give the same variant for the same identity and a different one for another identity', () => {
    const next = seeded(0x5eed);
    // Letters only: every character is varied, so two seeds agreeing by chance is out of reach.
    const letters = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
    for (let i = 0; i < 1000; i++) {
      const identity = randomIdentity(next);
      let other = randomIdentity(next);
      while (other.slice(0, 8) === identity.slice(0, 8)) other = randomIdentity(next);
      const flag = `CTF{${randomFlag(next, letters, 16, 40)}}`;
      const variant = variate(identity, flag);
      expect(variate(identity, flag)).toBe(variant);
      expect(variate(other, flag)).not.toBe(variant);
    }
  });

  it('should keep the length and every character in its look-alike group', () => {
    const next = seeded(42);
    for (let i = 0; i < 1000; i++) {
      const identity = randomIdentity(next);
      const flag = randomFlag(next);
      const special = next() < 0.5;
      const variant = [...variate(identity, flag, { special })];
      expect(variant).toHaveLength(flag.length);
      [...flag].forEach((c, at) => {
        const v = variant[at]!;
        const own = groupOf(c);
        if (own === undefined || (own.cls === 'special' && !special)) {
          expect(v).toBe(c);
          return;
        }
        expect(groupOf(v)?.group).toBe(own.group);
        if (!special) expect(v).toMatch(/^[A-Za-z0-9]$/);
      });
    }
  });

  it('should keep symbols and produce letters and digits only when special is off (the default)', () => {
    const flag = 'CTF{a_b-c d~e@h#i!s$o(}';
    for (const identity of ['0123456789abcdef', '89abcdef01234567', 'deadbeefdeadbeef']) {
      const variant = variate(identity, flag);
      expect(variant).toMatch(/^[A-Za-z0-9]{3}\{[A-Za-z0-9]_[A-Za-z0-9]-[A-Za-z0-9] [A-Za-z0-9]~/);
      expect(variant.slice(-10)).toMatch(/^@[A-Za-z0-9]#[A-Za-z0-9]![A-Za-z0-9]\$[A-Za-z0-9]\(\}$/);
    }
  });

  it('should vary symbols, and may go beyond ASCII, when special is on', () => {
    const next = seeded(7);
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const variant = variate(randomIdentity(next), 'CTF{a_secret}', { special: true });
      expect(variant.endsWith('}')).toBe(true);
      seen.add([...variant][5]!); // the `_`
      for (const c of variant) seen.add(c);
    }
    expect([...' -_~'].every((c) => seen.has(c))).toBe(true);
    expect([...seen].some((c) => c.charCodeAt(0) > 0x7e)).toBe(true);
  });

  it('should leave a disabled class alone and never choose it', () => {
    const next = seeded(99);
    const cases: [VariateOptions, RegExp, RegExp][] = [
      // options, what the varied positions may hold, what they may not
      [{ lowercase: false }, /^[a-z]$/, /^[a-z]$/],
      [{ uppercase: false }, /^[A-Z]$/, /^[A-Z]$/],
      [{ numeric: false }, /^[0-9]$/, /^[0-9]$/],
    ];
    for (const [options, kept, never] of cases) {
      for (let i = 0; i < 200; i++) {
        const flag = randomFlag(next, 'abeiostABEIOST4831057', 20, 30);
        const variant = variate(randomIdentity(next), flag, options);
        [...flag].forEach((c, at) => {
          if (kept.test(c)) expect(variant[at]).toBe(c);
          else expect(variant[at]).not.toMatch(never);
        });
      }
    }
    const all = { lowercase: false, uppercase: false, numeric: false, special: false };
    expect(variate('0123456789abcdef', 'CTF{All_0ff!}', all)).toBe('CTF{All_0ff!}');
  });

  it('should seed from the first 8 bytes of the identity, padded with 0 as Go does', () => {
    const flag = 'CTF{padding_and_truncation}';
    expect(variate('abc', flag)).toBe(variate('abc00000', flag));
    expect(variate('0123456789abcdef', flag)).toBe(variate('01234567', flag));
    expect(variate('0123456789abcdef', flag)).not.toBe(variate('1123456789abcdef', flag));
  });

  it('should refuse an empty identity or flag and a flag beyond printable ASCII, saying where', () => {
    expect(() => variate('', 'CTF{x}')).toThrow(new RangeError('variate: identity is empty'));
    expect(() => variate('0123456789abcdef', '')).toThrow(new RangeError('variate: flag is empty'));
    expect(() => variate('0123456789abcdef', 'CTF{café}')).toThrow(
      /flag holds U\+00E9 at index 7; only printable ASCII/,
    );
    expect(() => variate('0123456789abcdef', 'CTF{🚩}')).toThrow(/U\+1F6A9 at index 4/);
    expect(() => variate('0123456789abcdef', 'CTF{a\nb}')).toThrow(/U\+000A at index 5/);
  });

  it('should refuse arguments of the wrong type and unknown or non-boolean options', () => {
    const call = (...args: unknown[]): string => (variate as (...a: unknown[]) => string)(...args);
    expect(() => call(1234, 'CTF{x}')).toThrow(new TypeError('variate: identity must be a string'));
    expect(() => call('0123456789abcdef', null)).toThrow(
      new TypeError('variate: flag must be a string'),
    );
    expect(() => call('0123456789abcdef', 'CTF{x}', null)).toThrow(/options must be an object/);
    expect(() => call('0123456789abcdef', 'CTF{x}', { specials: true })).toThrow(
      new TypeError(
        'variate: unknown option "specials" (known: lowercase, uppercase, numeric, special)',
      ),
    );
    expect(() => call('0123456789abcdef', 'CTF{x}', { special: 'yes' })).toThrow(
      new TypeError('variate: option special must be a boolean'),
    );
    expect(call('0123456789abcdef', 'CTF{x}', { special: undefined })).toBe(
      variate('0123456789abcdef', 'CTF{x}'),
    );
  });

  it('should list every character in one look-alike group only', () => {
    const seen = new Map<string, number>();
    LOOK_ALIKES.forEach((group, at) => {
      for (const chars of Object.values(group)) {
        for (const c of chars) {
          expect(seen.get(c), `${c} in groups ${seen.get(c)} and ${at}`).toBeUndefined();
          seen.set(c, at);
        }
      }
    });
    for (const c of 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0134578') {
      expect(seen.has(c)).toBe(true);
    }
  });
});
