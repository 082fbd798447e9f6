import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { md5Hex } from './record-names';

describe('md5Hex', () => {
  const plain = (s: string): string => createHash('md5').update(s).digest('hex');

  it('should give the md5 of short and long ids, asked once or again', () => {
    for (const id of ['', 'chall-1', 'src/ü', 'x'.repeat(10_000)]) {
      expect(md5Hex(id)).toBe(plain(id));
      expect(md5Hex(id)).toBe(plain(id));
    }
  });

  it('should stay right past the memo bound', () => {
    for (let i = 0; i < 25_000; i++) md5Hex(`id-${i}`);
    expect(md5Hex('id-3')).toBe(plain('id-3'));
    expect(md5Hex('id-24999')).toBe(plain('id-24999'));
  });
});
