import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import type { FetchedScenario } from '../../src/shared/ports';

export const EXAMPLES = resolve(__dirname, '..', '..', 'examples');
export const NODE_MODULES = resolve(__dirname, '..', '..', 'node_modules');

/** Files of a directory, recursively, as relative path → content. */
export function readTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const e of readdirSync(d).sort()) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else out[relative(dir, p)] = readFileSync(p, 'base64');
    }
  };
  walk(dir);
  return out;
}

/** A scenario directory as if fetched: the digest is derived from its files, like a manifest's. */
export function asFetched(
  directory: string,
  reference = `local/${directory.split('/').pop()}:test`,
): FetchedScenario {
  const digest = createHash('sha256')
    .update(JSON.stringify(readTree(directory)))
    .digest('hex');
  return { reference, digest: `sha256:${digest}`, directory };
}

/** Copies an example into `into` and applies file overrides (path → content). */
export function scenarioFrom(
  example: string,
  into: string,
  files: Record<string, string> = {},
): string {
  const dir = join(
    into,
    `${example}-${Object.keys(files).length}-${Date.now()}-${Math.random().toString(16).slice(2, 8)}`,
  );
  cpSync(join(EXAMPLES, example), dir, { recursive: true });
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return dir;
}

/** Writes a scenario from scratch. */
export function scenarioOf(into: string, name: string, files: Record<string, string>): string {
  const dir = join(into, name);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return dir;
}
