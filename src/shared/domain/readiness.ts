/**
 * Readiness: what a scenario says must answer before its instance is handed out. The stack
 * output `readiness` is one probe or a list of probes:
 *
 * - `tcp://host:port`: a TCP connection is accepted;
 * - `http://…` / `https://…`: a GET answers with a 2xx or 3xx status.
 *
 * An instance whose scenario exports none is ready as soon as its stack is up (as upstream).
 */

/** Bounds of the `readiness` output: a program cannot make the service probe without end. */
export const READINESS_LIMITS = {
  /** Most probes one instance may declare. */
  maxProbes: 16,
  /** Longest probe, in characters. */
  maxProbeLength: 2048,
} as const;

export type ReadinessParse =
  { ok: true; probes: string[] | undefined } | { ok: false; problem: string };

/**
 * Reads the `readiness` output of a stack. Absent, null or an empty list: no readiness
 * (`probes` undefined). Anything else must be a probe or a list of probes within
 * {@link READINESS_LIMITS}; `problem` says what is wrong, for the scenario's author (it never
 * echoes the value: a probe may hold an instance's address).
 */
export function parseReadiness(output: unknown): ReadinessParse {
  if (output === undefined || output === null) return { ok: true, probes: undefined };
  const list: unknown[] = Array.isArray(output) ? output : [output];
  if (list.length === 0) return { ok: true, probes: undefined };
  if (list.length > READINESS_LIMITS.maxProbes) {
    return {
      ok: false,
      problem: `the readiness output holds ${list.length} probes (at most ${READINESS_LIMITS.maxProbes})`,
    };
  }
  const probes: string[] = [];
  for (const [index, item] of list.entries()) {
    const problem = probeProblem(item);
    if (problem !== undefined) {
      const which = Array.isArray(output) ? `readiness probe ${index + 1}` : 'the readiness probe';
      return { ok: false, problem: `${which} ${problem}` };
    }
    probes.push(item as string);
  }
  return { ok: true, probes };
}

/** What is wrong with one probe, or undefined when it is one. */
function probeProblem(probe: unknown): string | undefined {
  if (typeof probe !== 'string') return 'is not a string';
  if (probe.length > READINESS_LIMITS.maxProbeLength) {
    return `is longer than ${READINESS_LIMITS.maxProbeLength} characters`;
  }
  const target = readinessTarget(probe);
  return 'problem' in target ? target.problem : undefined;
}

/** Where one probe connects and what it expects. */
export type ReadinessTarget =
  { kind: 'tcp'; host: string; port: number } | { kind: 'http'; url: URL };

/**
 * The target of a probe, or the problem that makes it none. `tcp://` takes a host and a port
 * and nothing else; `http://` and `https://` any URL with a host.
 */
export function readinessTarget(probe: string): ReadinessTarget | { problem: string } {
  let url: URL;
  try {
    url = new URL(probe);
  } catch {
    return { problem: 'is not a URL (tcp://host:port, http://… or https://…)' };
  }
  if (!['tcp:', 'http:', 'https:'].includes(url.protocol)) {
    return { problem: 'has an unsupported scheme (tcp, http or https)' };
  }
  if (url.username !== '' || url.password !== '') {
    return { problem: 'carries credentials (user:password@), which are not supported' };
  }
  if (url.hostname === '') return { problem: 'has no host' };
  if (url.port === '0') return { problem: 'has port 0' };
  switch (url.protocol) {
    case 'tcp:': {
      if (url.port === '') return { problem: 'has no port (tcp://host:port)' };
      if ((url.pathname !== '' && url.pathname !== '/') || url.search !== '' || url.hash !== '') {
        return { problem: 'has more than a host and a port (tcp://host:port)' };
      }
      return { kind: 'tcp', host: unbracketed(url.hostname), port: Number(url.port) };
    }
    default:
      return { kind: 'http', url };
  }
}

/** `[::1]` → `::1`: sockets take IPv6 addresses without the URL's brackets. */
function unbracketed(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}
