/**
 * Scenarios for the pool and janitor e2e tests, as files (relative path → content); like
 * api-scenarios.ts they need no node_modules (the service provides @pulumi/pulumi).
 */

/**
 * {@link outputsOnlyScenario}'s outputs behind a dynamic resource whose creation writes
 * `<markerDir>/started-<identity>` then sleeps `sleepMs`: an `up` that is observably in progress
 * for a few seconds (a preview creates nothing, so it stays quick). Deleting it does nothing.
 */
export function slowUpScenario(markerDir: string, sleepMs = 5_000): Record<string, string> {
  return {
    'Pulumi.yaml': 'name: slow-up\nruntime: nodejs\n',
    'package.json': `${JSON.stringify({ name: 'slow-up', private: true, main: 'index.js' })}\n`,
    'index.js': `const pulumi = require('@pulumi/pulumi');
const config = new pulumi.Config();
const identity = config.require('identity');

const sleeper = {
  async create(inputs) {
    const fs = require('node:fs');
    fs.writeFileSync(inputs.dir + '/started-' + inputs.identity, String(process.pid));
    await new Promise((r) => setTimeout(r, inputs.sleepMs));
    return { id: inputs.identity, outs: inputs };
  },
  async delete() {},
};

const slow = new pulumi.dynamic.Resource(sleeper, 'slow', {
  dir: ${JSON.stringify(markerDir)},
  identity,
  sleepMs: ${sleepMs},
});

exports.connection_info = slow.id.apply((id) => 'http://' + id + '.ctf.invalid');
exports.flags = ['PLUGIN{' + identity + '-0}'];
`,
  };
}
