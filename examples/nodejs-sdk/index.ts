// Scenario in TypeScript with chall-manager's SDK. It needs no package.json nor node_modules:
// chall-manager provides @pulumi/pulumi and @chall-manager/sdk to the scenarios it runs.
//
// Each instance gets its own variant of the flags (`variate` seeded with the instance identity),
// so a flag shared between teams is recognised. Recognised additional keys:
// - `flag`: the flag to vary (default "CTF{typescript_scenarios_vary_their_flags}");
// - `host`: the host players connect to (default "challenge.ctf.local").
import * as pulumi from '@pulumi/pulumi';
import { run, variate } from '@chall-manager/sdk';

/** What a real scenario would deploy (a container, a VM…), reduced to a component here. */
class Instance extends pulumi.ComponentResource {
  readonly port: number;

  constructor(identity: string, opts?: pulumi.ComponentResourceOptions) {
    super('chall-manager:examples:Instance', `instance-${identity}`, {}, opts);
    // A port of its own per instance, derived from the identity (16 hex characters).
    this.port = 30000 + (parseInt(identity.slice(0, 4), 16) % 2768);
    this.registerOutputs({ port: this.port });
  }
}

export = run(({ identity, additional }) => {
  const instance = new Instance(identity);
  const host = additional.host ?? 'challenge.ctf.local';
  const flag = additional.flag ?? 'CTF{typescript_scenarios_vary_their_flags}';
  return {
    connectionInfo: `nc ${host} ${instance.port}`,
    flags: [
      variate(identity, flag),
      // A second flag, varied with look-alike symbols too: harder to guess, harder to type.
      variate(identity, 'CTF{bonus}', { special: true }),
    ],
  };
});
