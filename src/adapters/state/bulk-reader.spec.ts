import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BulkReader } from './bulk-reader';

// Long listings are read on the worker thread, short ones on the main thread: same answers.
describe.each([
  ['on the worker', 0],
  ['on the main thread', Number.POSITIVE_INFINITY],
])('BulkReader, reading %s', (_where, workerFrom) => {
  let dir: string;
  let reader: BulkReader;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cm-bulk-'));
    reader = new BulkReader(workerFrom);
  });
  afterEach(async () => {
    await reader.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('should give each file its text in order, and undefined when it is missing', async () => {
    await writeFile(join(dir, 'a'), 'first');
    await writeFile(join(dir, 'b'), 'é 🚩');
    expect(await reader.readTexts([join(dir, 'b'), join(dir, 'none'), join(dir, 'a')])).toEqual([
      'é 🚩',
      undefined,
      'first',
    ]);
  });

  it('should give an error with its code when a path cannot be read as a file', async () => {
    await mkdir(join(dir, 'sub'));
    const [result] = await reader.readTexts([join(dir, 'sub')]);
    expect(result).toBeInstanceOf(Error);
    expect(result).toMatchObject({ code: 'EISDIR' });
  });

  it('should list directories, and give undefined when one is missing', async () => {
    await mkdir(join(dir, 'sub'));
    await writeFile(join(dir, 'sub', 'x'), '');
    const [listed, missing, underFile] = await reader.readDirs([
      join(dir, 'sub'),
      join(dir, 'none'),
      join(dir, 'sub', 'x', 'y'),
    ]);
    expect(listed).toEqual(['x']);
    expect(missing).toBeUndefined();
    expect(underFile).toBeUndefined();
  });

  it('should list a missing directory as empty, and give an error with its code when one cannot be read', async () => {
    await mkdir(join(dir, 'sub'));
    await writeFile(join(dir, 'sub', 'x'), '');
    await mkdir(join(dir, 'empty'));
    expect(
      await reader.listDirs([
        join(dir, 'sub'),
        join(dir, 'none'),
        join(dir, 'empty'),
        join(dir, 'sub', 'x', 'y'),
      ]),
    ).toEqual([['x'], [], [], []]);
    const [unreadable] = await reader.listDirs([join(dir, 'n'.repeat(300))]);
    expect(unreadable).toBeInstanceOf(Error);
    expect(unreadable).toMatchObject({ code: 'ENAMETOOLONG' });
  });

  it('should keep the order when a listing takes several messages', async () => {
    const names = Array.from({ length: 600 }, (_, i) => `f${i}`);
    await Promise.all(names.map((n) => writeFile(join(dir, n), n)));
    expect(await reader.readTexts(names.map((n) => join(dir, n)))).toEqual(names);
  });

  it('should answer nothing without starting a worker when given no path, and read again after close', async () => {
    expect(await reader.readTexts([])).toEqual([]);
    await writeFile(join(dir, 'a'), 'x');
    expect(await reader.readTexts([join(dir, 'a')])).toEqual(['x']);
    await reader.close();
    expect(await reader.readTexts([join(dir, 'a')])).toEqual(['x']);
  });
});
