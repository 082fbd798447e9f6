import { lstat, readdir, chmod } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Everything under DIR and CACHE is the service's own: records and Pulumi checkpoints hold flags,
 * stack configs hold the additional values. New files are owner-only through the process umask
 * (077, set at start and inherited by the Pulumi CLI and its plugins); this tightens what an older
 * version, another tool or a restored backup left: group and other bits are cleared, owner bits
 * (an executable's x) kept. Symbolic links are neither followed nor changed (their modes mean
 * nothing). Returns how many entries it changed.
 */
export async function makeOwnerOnly(root: string): Promise<number> {
  const info = await lstat(root).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (info === undefined || info.isSymbolicLink()) return 0;
  let changed = 0;
  if ((info.mode & 0o077) !== 0) {
    await chmod(root, info.mode & 0o7700);
    changed++;
  }
  if (info.isDirectory()) {
    for (const entry of await readdir(root)) changed += await makeOwnerOnly(join(root, entry));
  }
  return changed;
}
