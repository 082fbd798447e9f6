import * as pulumi from '@pulumi/pulumi';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { run, type Outputs, type Request } from './run';

/** The value an output resolves to (the mocks resolve every output). */
const valueOf = <T>(output: pulumi.Output<T>): Promise<T> =>
  new Promise((resolve) => output.apply((v) => resolve(v)));

/** The configuration chall-manager sets, in the namespace of project `scn`. */
function configure(values: Record<string, string>): void {
  pulumi.runtime.setAllConfig(
    Object.fromEntries(Object.entries(values).map(([k, v]) => [`scn:${k}`, v])),
  );
}

describe('run', () => {
  beforeAll(async () => {
    await pulumi.runtime.setMocks(
      {
        newResource: (args) => ({ id: `${args.name}-id`, state: args.inputs as object }),
        call: (args) => args.inputs as Record<string, unknown>,
      },
      'scn',
      'stack',
    );
  });

  afterEach(() => {
    delete process.env.CM_PROJECT;
    pulumi.runtime.setAllConfig({});
  });

  it('should hand the factory the identity, additional and project chall-manager set', async () => {
    process.env.CM_PROJECT = 'scn';
    configure({ identity: '0123456789abcdef', additional: '{"image":"nginx","prefix":"FLAG"}' });
    let seen: Request | undefined;
    await run((request) => {
      seen = request;
      return { connectionInfo: 'x' };
    });
    expect(seen).toEqual({
      identity: '0123456789abcdef',
      additional: { image: 'nginx', prefix: 'FLAG' },
      project: 'scn',
    });
  });

  it("should read the configuration of Pulumi's project when CM_PROJECT is unset, additional empty when absent", async () => {
    configure({ identity: 'fedcba9876543210' });
    let seen: Request | undefined;
    await run(async (request) => {
      seen = request;
      return Promise.resolve({ connectionInfo: 'x' });
    });
    expect(seen).toEqual({ identity: 'fedcba9876543210', additional: {}, project: 'scn' });
  });

  it('should export connection_info in clear and the flags as secrets', async () => {
    configure({ identity: '0123456789abcdef' });
    const outputs: Outputs = await run(({ identity }) => ({
      connectionInfo: pulumi.output(`nc host ${identity.length}`),
      flags: ['CTF{one}', pulumi.output('CTF{two}')],
    }));
    expect(Object.keys(outputs).sort()).toEqual(['connection_info', 'flags']);
    expect(await valueOf(outputs.connection_info)).toBe('nc host 16');
    expect(await pulumi.isSecret(outputs.connection_info)).toBe(false);
    expect(await valueOf(outputs.flags!)).toEqual(['CTF{one}', 'CTF{two}']);
    expect(await pulumi.isSecret(outputs.flags!)).toBe(true);
  });

  it('should export the deprecated single flag as a secret flag output', async () => {
    configure({ identity: '0123456789abcdef' });
    const outputs = await run(() => ({ connectionInfo: 'nc host 1', flag: 'CTF{single}' }));
    expect(Object.keys(outputs).sort()).toEqual(['connection_info', 'flag']);
    expect(await valueOf(outputs.flag!)).toBe('CTF{single}');
    expect(await pulumi.isSecret(outputs.flag!)).toBe(true);
  });

  it('should fail when the factory gives no connection info', async () => {
    configure({ identity: '0123456789abcdef' });
    await expect(run(() => ({}) as never)).rejects.toThrow(
      'run: the factory returned no connectionInfo (chall-manager requires it)',
    );
    await expect(run(() => undefined as never)).rejects.toThrow(
      'run: the factory must return an object with connectionInfo',
    );
  });

  it('should fail when the configuration is not what chall-manager sets', async () => {
    await expect(run(() => ({ connectionInfo: 'x' }))).rejects.toThrow(/identity/);
    configure({ identity: '0123456789abcdef', additional: '["a"]' });
    await expect(run(() => ({ connectionInfo: 'x' }))).rejects.toThrow(
      'run: the config scn:additional is not a JSON object',
    );
    configure({ identity: '0123456789abcdef', additional: '{"port":8080}' });
    await expect(run(() => ({ connectionInfo: 'x' }))).rejects.toThrow(
      'run: the config scn:additional.port is not a string',
    );
  });

  it('should pass on what the factory throws', async () => {
    configure({ identity: '0123456789abcdef' });
    await expect(
      run(() => {
        throw new Error('no image');
      }),
    ).rejects.toThrow('no image');
    await expect(run('not a function' as never)).rejects.toThrow('run: factory must be a function');
  });
});
