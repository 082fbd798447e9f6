/** Values shorter than this are not redacted (they would mangle every line). */
const MIN_SECRET_LENGTH = 4;

/** `line` with every occurrence of a secret replaced by `[REDACTED]`. */
export function redact(line: string, secrets: readonly string[]): string {
  let out = line;
  // Longest first: a secret inside another (a flag inside a connection_info) goes with it.
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    if (secret.length >= MIN_SECRET_LENGTH) out = out.split(secret).join('[REDACTED]');
  }
  return out;
}
