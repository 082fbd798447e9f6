import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(__dirname, '..', '..');
const GENERATED = join(ROOT, 'src', 'shared', 'transport', 'api-messages.generated.ts');

describe('api-messages.generated.ts', () => {
  it('should be what the generator writes from the protos now (run npm run generate:proto)', () => {
    const fresh = execFileSync(
      process.execPath,
      [join(ROOT, 'scripts', 'generate-proto-types.mjs'), '--stdout'],
      { cwd: ROOT, encoding: 'utf8' },
    );
    expect(readFileSync(GENERATED, 'utf8')).toBe(fresh);
  });
});
