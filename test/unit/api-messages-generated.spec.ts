import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { OUTPUT, render } from '../../scripts/generate-proto-types.mjs';

describe('api-messages.generated.ts', () => {
  it('should be what the generator writes from the protos now (run npm run generate:proto)', async () => {
    expect(readFileSync(OUTPUT, 'utf8')).toBe(await render());
  });
});
