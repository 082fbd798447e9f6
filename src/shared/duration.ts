/**
 * The one duration parser. Durations are written two ways here: Go's `time.ParseDuration` text in
 * settings (`1h30m`, `500ms`, as upstream's flags and its janitor's `TICKER`), and protojson's
 * Duration text on the API (`600s`, `-1.5s`). The second is a subset of the first with a single
 * `s` component, so both read through the same grammar with their own allowances.
 */

/** Nanoseconds per unit, as Go names them (its ns, us and µs are not accepted here). */
const UNIT_NS: Readonly<Record<string, bigint>> = {
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};

/** What a syntax allows, on top of `<decimal><unit>` components. */
interface DurationSyntax {
  units: readonly string[];
  /** More than one component (`1h30m`). */
  compound: boolean;
  /** A leading `-`. */
  signed: boolean;
  /** Most fractional digits of a component. */
  maxFractionDigits: number;
}

const COMPONENT = /(\d+)(?:\.(\d+))?([a-z]+)/y;

/**
 * Nanoseconds of `text` read in `syntax`, exactly (decimal arithmetic, no float rounding), or
 * undefined when the text does not follow it.
 */
function parseNanos(text: string, syntax: DurationSyntax): bigint | undefined {
  let at = 0;
  let negative = false;
  if (text.startsWith('-')) {
    if (!syntax.signed) return undefined;
    negative = true;
    at = 1;
  }
  let total = 0n;
  let components = 0;
  while (at < text.length) {
    COMPONENT.lastIndex = at;
    const m = COMPONENT.exec(text);
    if (!m) return undefined;
    const [all, whole, fraction = '', unit] = m as unknown as [
      string,
      string,
      string | undefined,
      string,
    ];
    const perUnit = syntax.units.includes(unit) ? UNIT_NS[unit] : undefined;
    if (perUnit === undefined || fraction.length > syntax.maxFractionDigits) return undefined;
    const scale = 10n ** BigInt(fraction.length);
    total += BigInt(whole) * perUnit + (BigInt(fraction || '0') * perUnit) / scale;
    components++;
    at += all.length;
  }
  if (components === 0 || (components > 1 && !syntax.compound)) return undefined;
  return negative ? -total : total;
}

const GO_SYNTAX: DurationSyntax = {
  units: ['ms', 's', 'm', 'h'],
  compound: true,
  signed: false,
  maxFractionDigits: Infinity,
};

const PROTOJSON_SYNTAX: DurationSyntax = {
  units: ['s'],
  compound: false,
  signed: true,
  maxFractionDigits: 9,
};

/**
 * Milliseconds of a Go-style duration (`90s`, `10m`, `1h30m`, `500ms`, `1.5s`; units ms, s, m,
 * h; no sign), or undefined if it does not parse. Fractions below a millisecond are kept.
 */
export function parseGoDuration(text: string): number | undefined {
  const ns = parseNanos(text, GO_SYNTAX);
  return ns === undefined ? undefined : Number(ns) / 1e6;
}

/**
 * Milliseconds of protojson Duration text (`"600s"`, `"1.5s"`, `"-2s"`: seconds, up to 9
 * fractional digits, an `s` suffix), sub-millisecond digits dropped; undefined if it does not
 * parse.
 */
export function parseProtojsonDuration(text: string): number | undefined {
  const ns = parseNanos(text, PROTOJSON_SYNTAX);
  // Truncates toward zero, as the Duration's own seconds and nanos do.
  return ns === undefined ? undefined : Number(ns / 1_000_000n);
}
