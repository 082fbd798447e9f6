import {
  chmodSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeOwnerOnly } from './owner-only';

describe('makeOwnerOnly', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'cm-owner-only-'));
  afterEach(() => rmSync(scratch, { recursive: true, force: true }));

  const modeOf = (path: string): number => lstatSync(path).mode & 0o7777;

  it('should clear group and other bits of every file and directory and keep owner bits', async () => {
    const root = join(scratch, 'dir');
    mkdirSync(join(root, 'chall', 'x'), { recursive: true });
    chmodSync(root, 0o755);
    chmodSync(join(root, 'chall'), 0o775);
    writeFileSync(join(root, 'chall', 'x', 'info.json'), '{}', { mode: 0o644 });
    writeFileSync(join(root, 'chall', 'x', 'binary'), '', { mode: 0o755 });
    chmodSync(join(root, 'chall', 'x', 'info.json'), 0o644);
    chmodSync(join(root, 'chall', 'x', 'binary'), 0o755);
    const outside = join(scratch, 'outside');
    writeFileSync(outside, '', { mode: 0o644 });
    chmodSync(outside, 0o644);
    symlinkSync(outside, join(root, 'link'));

    expect(await makeOwnerOnly(root)).toBe(5);

    expect(modeOf(root)).toBe(0o700);
    expect(modeOf(join(root, 'chall'))).toBe(0o700);
    expect(modeOf(join(root, 'chall', 'x'))).toBe(0o700);
    expect(modeOf(join(root, 'chall', 'x', 'info.json'))).toBe(0o600);
    expect(modeOf(join(root, 'chall', 'x', 'binary'))).toBe(0o700);
    // A link is not followed: what it points at is not the service's to change.
    expect(modeOf(outside)).toBe(0o644);
    expect(await makeOwnerOnly(root)).toBe(0);
  });

  it('should do nothing when the directory does not exist yet', async () => {
    expect(await makeOwnerOnly(join(scratch, 'missing'))).toBe(0);
  });
});
