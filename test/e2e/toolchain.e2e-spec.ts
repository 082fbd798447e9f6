import { LocalWorkspace, PulumiCommand } from '@pulumi/pulumi/automation';
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useToolchainPath, which } from '../support/toolchain';

const FIXTURES = resolve(__dirname, 'fixtures');
const NODE_MODULES = resolve(__dirname, '..', '..', 'node_modules');

/**
 * Proves the toolchain end to end: the real Pulumi CLI and language hosts, driven through the
 * Automation API with a file backend, deploy and destroy a nodejs and a go program.
 */
describe('Pulumi toolchain', () => {
  let scratch: string;
  let pulumi: PulumiCommand;

  beforeAll(async () => {
    useToolchainPath();
    scratch = mkdtempSync(join(tmpdir(), 'cm-smoke-'));
    pulumi = await PulumiCommand.get({ root: dirname(dirname(which('pulumi')!)) });
  });

  afterAll(() => {
    rmSync(scratch, { recursive: true, force: true });
  });

  it.each([
    ['nodejs', 'smoke-nodejs', 'nodejs instance'],
    ['go', 'smoke-go', 'go instance'],
  ])(
    'should deploy and destroy a %s program when driven through the Automation API',
    async (_runtime, fixture, prefix) => {
      const workDir = join(scratch, fixture);
      cpSync(join(FIXTURES, fixture), workDir, { recursive: true });
      const backend = join(scratch, `${fixture}-state`);
      mkdirSync(backend);
      const stack = await LocalWorkspace.createOrSelectStack(
        { stackName: `organization/${fixture}/0123456789abcdef`, workDir },
        {
          pulumiCommand: pulumi,
          envVars: {
            PULUMI_BACKEND_URL: `file://${backend}`,
            PULUMI_CONFIG_PASSPHRASE: 'smoke-test',
            PULUMI_SKIP_UPDATE_CHECK: 'true',
            // The service provides the Node SDK to nodejs programs that do not ship node_modules.
            NODE_PATH: NODE_MODULES,
          },
        },
      );
      await stack.setConfig('identity', { value: '0123456789abcdef' });

      const up = await stack.up();
      expect(up.summary.result).toBe('succeeded');
      expect(up.outputs.connection_info?.value).toBe(`${prefix} 0123456789abcdef`);

      const destroyed = await stack.destroy();
      expect(destroyed.summary.result).toBe('succeeded');
      expect(destroyed.summary.resourceChanges?.delete).toBe(1);
      expect(await stack.outputs()).toEqual({});
      await stack.workspace.removeStack(stack.name);
    },
  );
});
