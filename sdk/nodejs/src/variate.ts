import { GoRand } from './go-rand';

/** Which character classes `variate` may change and choose from. */
export interface VariateOptions {
  /** Lowercase letters (default `true`). */
  lowercase?: boolean;
  /** Uppercase letters (default `true`). */
  uppercase?: boolean;
  /** Digits that look like letters: `4 8 3 1 0 5 7` (default `true`). */
  numeric?: boolean;
  /**
   * Look-alike symbols (default `false`): `@ ( # ! $ & ~ - _` and space, and characters beyond
   * ASCII such as `À ß € Ø § ×`. They make flags harder to read and to type, and may need escaping
   * where a flag is written into a configuration.
   */
  special?: boolean;
}

type Class = 'lowercase' | 'uppercase' | 'numeric' | 'special';
const CLASSES: readonly Class[] = ['lowercase', 'uppercase', 'numeric', 'special'];

/**
 * Groups of look-alike characters, by class, in the order upstream's Go SDK lists them: the
 * order of the choices is part of the result. No character is in two groups. Exported for the
 * tests that compare `variate` with Go; not part of the package's entry point.
 */
export const LOOK_ALIKES: readonly Partial<Record<Class, string>>[] = [
  { lowercase: 'a', uppercase: 'A', numeric: '4', special: '@ªÀÁÂÃÄÅàáâãäå' },
  { lowercase: 'b', uppercase: 'B', numeric: '8', special: 'ß' },
  { lowercase: 'c', uppercase: 'C', special: '(¢©Çç' },
  { lowercase: 'd', uppercase: 'D', special: 'Ð' },
  { lowercase: 'e', uppercase: 'E', numeric: '3', special: '€&£ÈÉÊËèéêë' },
  { lowercase: 'f', uppercase: 'F', special: 'ƒ' },
  { lowercase: 'g', uppercase: 'G' },
  { lowercase: 'h', uppercase: 'H', special: '#' },
  { lowercase: 'i', uppercase: 'I', numeric: '1', special: '!ÌÍÎÏìíîï' },
  { lowercase: 'j', uppercase: 'J' },
  { lowercase: 'k', uppercase: 'K' },
  { lowercase: 'l', uppercase: 'L' },
  { lowercase: 'm', uppercase: 'M' },
  { lowercase: 'n', uppercase: 'N' },
  { lowercase: 'o', uppercase: 'O', numeric: '0', special: '¤°ºÒÓÔÕÖØøòóôõöð' },
  { lowercase: 'p', uppercase: 'P' },
  { lowercase: 'q', uppercase: 'Q' },
  { lowercase: 'r', uppercase: 'R', special: '®' },
  { lowercase: 's', uppercase: 'S', numeric: '5', special: '$šŠ§' },
  { lowercase: 't', uppercase: 'T', numeric: '7', special: '†' },
  { lowercase: 'u', uppercase: 'U', special: 'µÙÚÛÜùúûü' },
  { lowercase: 'v', uppercase: 'V' },
  { lowercase: 'w', uppercase: 'W' },
  { lowercase: 'x', uppercase: 'X', special: '×' },
  { lowercase: 'y', uppercase: 'Y', special: 'Ÿ¥Ýýÿ' },
  { lowercase: 'z', uppercase: 'Z', special: 'žŽ' },
  { special: ' -_~' },
];

/** Character → its group and class (only ASCII characters are ever looked up). */
const INDEX = new Map<string, { group: Partial<Record<Class, string>>; cls: Class }>();
for (const group of LOOK_ALIKES) {
  for (const cls of CLASSES) for (const c of group[cls] ?? '') INDEX.set(c, { group, cls });
}

const DEFAULTS: Readonly<Required<VariateOptions>> = {
  lowercase: true,
  uppercase: true,
  numeric: true,
  special: false,
};

/**
 * A variant of `flag` for one instance: each character that has look-alikes in the enabled
 * classes (its own class enabled) is replaced by one of them, chosen by a generator seeded from
 * `identity`. Other characters (`{`, `}`, and `_` unless `special`) stay as they are, so the
 * variant has the length and the shape of `flag`.
 *
 * The same identity, flag and options always give the same variant, and the variant is the one
 * upstream's Go SDK (`sdk.Variate`) gives: the seed is the first 8 bytes of the identity (UTF-8,
 * right-padded with `0`) as a big-endian integer, fed to Go's `math/rand`. Different identities
 * almost always give different variants of a flag of a dozen letters or more (the generator
 * has 2³¹ − 1 seeds, so two identities may share one).
 *
 * Not a secret: anyone who knows the flag and the identity can compute the variant. It makes
 * each instance's flag its own, so a flag shared between teams is recognised.
 *
 * @param identity the instance identity (the stack config `identity`; `run` gives it). Not empty.
 * @param flag the flag to vary: printable ASCII only (space to `~`), not empty.
 * @throws TypeError on a non-string argument, an unknown option or a non-boolean option value.
 * @throws RangeError on an empty identity or flag, or a flag with a character outside printable
 *   ASCII: upstream varies such a flag byte by byte, which breaks its UTF-8 characters.
 */
export function variate(identity: string, flag: string, options: VariateOptions = {}): string {
  if (typeof identity !== 'string') throw new TypeError('variate: identity must be a string');
  if (typeof flag !== 'string') throw new TypeError('variate: flag must be a string');
  if (identity === '') throw new RangeError('variate: identity is empty');
  if (flag === '') throw new RangeError('variate: flag is empty');
  const bad = /[^\x20-\x7e]/u.exec(flag);
  if (bad !== null) {
    const code = bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
    throw new RangeError(
      `variate: flag holds U+${code} at index ${bad.index}; only printable ASCII (space to ~) is varied`,
    );
  }
  const opts = resolveOptions(options);

  const rand = new GoRand(seedOf(identity));
  let out = '';
  for (const c of flag) {
    const entry = INDEX.get(c);
    if (entry === undefined || !opts[entry.cls]) {
      out += c;
      continue;
    }
    const choices = CLASSES.flatMap((cls) => (opts[cls] ? [...(entry.group[cls] ?? '')] : []));
    out += choices[Number(rand.int() % BigInt(choices.length))]!;
  }
  return out;
}

function resolveOptions(options: VariateOptions): Required<VariateOptions> {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError('variate: options must be an object');
  }
  const out = { ...DEFAULTS };
  for (const [key, value] of Object.entries(options)) {
    if (!(CLASSES as readonly string[]).includes(key)) {
      throw new TypeError(`variate: unknown option "${key}" (known: ${CLASSES.join(', ')})`);
    }
    if (value === undefined) continue;
    if (typeof value !== 'boolean') throw new TypeError(`variate: option ${key} must be a boolean`);
    out[key as Class] = value;
  }
  return out;
}

/** Go's `int64(binary.BigEndian.Uint64([]byte(identity)))`, the identity padded to 8 bytes. */
function seedOf(identity: string): bigint {
  const bytes = new TextEncoder().encode(identity);
  let seed = 0n;
  for (let i = 0; i < 8; i++) seed = (seed << 8n) | BigInt(bytes[i] ?? 0x30);
  return BigInt.asIntN(64, seed);
}
