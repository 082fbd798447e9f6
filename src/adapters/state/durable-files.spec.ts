import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createEmpty, exists, readIfExists, writeAndSync, writeAtomic } from './durable-files';

describe('durable files', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'cm-durable-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));
  let n = 0;
  const fresh = (): string => join(scratch, `case-${++n}`);

  it('should write every byte of a large text, exclusively, with the mode asked', async () => {
    const path = `${fresh()}.txt`;
    const text = 'é'.repeat(3_000_000); // 6 MB: more than one write(2) may take
    await writeAndSync(path, text, 0o600);
    expect(readFileSync(path, 'utf8')).toBe(text);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    await expect(writeAndSync(path, 'again', 0o600)).rejects.toMatchObject({ code: 'EEXIST' });
    expect(readFileSync(path, 'utf8')).toBe(text);
  });

  it.each([
    ['empty', ''],
    ['small', '{"a":1}'],
    ['exactly one first read', 'x'.repeat(16 * 1024)],
    [
      'several reads, a character across their boundary',
      `${'x'.repeat(16 * 1024 - 1)}${'é'.repeat(40_000)}`,
    ],
  ])('should read a %s file whole', async (_, text) => {
    const path = `${fresh()}.txt`;
    writeFileSync(path, text);
    expect(await readIfExists(path)).toBe(text);
  });

  it('should read a missing file as undefined, and refuse a directory', async () => {
    expect(await readIfExists(join(fresh(), 'missing.json'))).toBeUndefined();
    const dir = fresh();
    mkdirSync(dir);
    await expect(readIfExists(dir)).rejects.toMatchObject({ code: 'EISDIR' });
  });

  it('should replace a file atomically and leave no temp file behind', async () => {
    const dir = fresh();
    await writeAtomic(join(dir, 'info.json'), '{"a":1}', 0o644, { mkdir: true });
    await writeAtomic(join(dir, 'info.json'), '{"a":2}', 0o644);
    expect(readFileSync(join(dir, 'info.json'), 'utf8')).toBe('{"a":2}');
    expect(readdirSync(dir)).toEqual(['info.json']);
  });

  it('should create a missing directory only when asked to', async () => {
    const dir = join(fresh(), 'nested', 'deeper');
    await expect(writeAtomic(join(dir, 'info.json'), '{}', 0o644)).rejects.toMatchObject({
      code: 'ENOENT',
    });
    expect(existsSync(dir)).toBe(false);
    await writeAtomic(join(dir, 'info.json'), '{}', 0o644, { mkdir: true });
    expect(readFileSync(join(dir, 'info.json'), 'utf8')).toBe('{}');
    expect(statSync(dir).mode & 0o777).toBe(0o700);
  });

  it('should create an empty file once, and say so', async () => {
    const path = `${fresh()}.entry`;
    expect(await createEmpty(path, 0o600)).toBe(true);
    expect(await createEmpty(path, 0o600)).toBe(false);
    expect(readFileSync(path, 'utf8')).toBe('');
    await expect(createEmpty(join(fresh(), 'missing', 'entry'), 0o600)).rejects.toMatchObject({
      code: 'ENOENT',
    });
  });

  it('should tell whether a path exists', async () => {
    const path = `${fresh()}.txt`;
    expect(await exists(path)).toBe(false);
    await writeAndSync(path, '', 0o600);
    expect(await exists(path)).toBe(true);
    expect(await exists(join(path, 'below-a-file'))).toBe(false);
  });
});
