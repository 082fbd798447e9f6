import { execFile } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

/** Files of a directory, recursively, as sorted relative paths (the layer titles). */
export function scenarioFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const entry of readdirSync(d).sort()) {
      const path = join(d, entry);
      if (statSync(path).isDirectory()) walk(path);
      else out.push(relative(dir, path));
    }
  };
  walk(dir);
  return out;
}

/**
 * Pushes a scenario directory with the real ORAS CLI, as the docs do: run from the directory,
 * artifact type `application/vnd.ctfer-io.scenario`, one `application/vnd.ctfer-io.file` layer per
 * file titled with its relative path (`typed: false`: no types at all, ORAS's defaults).
 * Asynchronous, so a service running in this process keeps answering meanwhile. Returns the
 * reference `<registry>/<repository>`.
 */
export function orasPush(
  registry: string,
  repository: string,
  dir: string,
  { typed = true }: { typed?: boolean } = {},
): Promise<string> {
  const reference = `${registry}/${repository}`;
  const files = scenarioFiles(dir).map((f) => (typed ? `${f}:application/vnd.ctfer-io.file` : f));
  const type = typed ? ['--artifact-type', 'application/vnd.ctfer-io.scenario'] : [];
  const args = ['push', '--plain-http', reference, ...type, ...files];
  return new Promise((resolve, reject) => {
    execFile('oras', args, { cwd: dir, encoding: 'utf8' }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`oras ${args.join(' ')} failed: ${stderr}`, { cause: err }));
      else resolve(reference);
    });
  });
}
