import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { freePort } from '../support/services';

const MAIN = resolve(__dirname, '..', '..', 'dist', 'main.js');

/** The built service, started as an operator starts it: `node dist/main.js` plus environment. */
describe('node dist/main.js', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'cm-boot-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('should answer GET /healthcheck when started with defaults and a port', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [MAIN], {
      env: {
        ...process.env,
        PORT: String(port),
        DIR: join(scratch, 'data'),
        CACHE: join(scratch, 'cache'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      // Refused until the service listens; its first answer must be a healthy one.
      const res = await vi.waitFor(() => fetch(`http://127.0.0.1:${port}/healthcheck`), {
        timeout: 30_000,
        interval: 50,
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as Record<string, unknown>;
      expect(body).toMatchObject({ status: 'OK', component: { name: 'chall-manager' } });
      expect(typeof body?.timestamp).toBe('string');
    } finally {
      child.kill('SIGTERM');
    }
  });

  it("should continue a caller's trace in its log lines when no telemetry is exported", async () => {
    const port = await freePort();
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PORT: String(port),
      DIR: join(scratch, 'traced'),
      CACHE: join(scratch, 'traced-cache'),
      LOG_LEVEL: 'debug',
    };
    for (const name of Object.keys(env)) if (name.startsWith('OTEL_')) delete env[name];
    const child = spawn(process.execPath, [MAIN], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const trace = '0af7651916cd43dd8448eb211c80319c';
    try {
      await vi.waitFor(() => fetch(`http://127.0.0.1:${port}/healthcheck`), {
        timeout: 30_000,
        interval: 50,
      });
      // A registry nobody listens on: the failure is logged while the request's span is active.
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/challenge`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          traceparent: `00-${trace}-b7ad6b7169203331-01`,
        },
        body: JSON.stringify({ id: 'traced', scenario: '127.0.0.1:1/nobody/here:v1' }),
      });
      expect(res.ok).toBe(false);
      await vi.waitFor(() => expect(output).toContain(`"trace_id":"${trace}"`), {
        timeout: 10_000,
      });
    } finally {
      child.kill('SIGTERM');
    }
  });

  it.each([
    ['PORT', 'http'],
    ['LOG_LEVEL', 'loud'],
    ['SWAGGER', 'maybe'],
  ])('should refuse to start and name %s when it is invalid', (name, value) => {
    const res = spawnSync(process.execPath, [MAIN], {
      env: { ...process.env, [name]: value },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(res.status).toBe(2);
    expect(res.stderr).toContain(name);
  });
});
