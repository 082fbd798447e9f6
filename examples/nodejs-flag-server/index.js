// Scenario: one TCP service per instance, on 127.0.0.1, answering every connection with the
// instance's flag. It needs no node_modules: chall-manager provides @pulumi/pulumi.
//
// Config (set by chall-manager): `identity` (16 hex chars), `additional` (JSON object of strings).
// Recognised additional keys: `prefix` (flag prefix, default "CTF").
const pulumi = require('@pulumi/pulumi');
const { createHash } = require('node:crypto');

const config = new pulumi.Config();
const identity = config.require('identity');
const additional = config.getObject('additional') || {};
const prefix = additional.prefix || 'CTF';
const flag = `${prefix}{${createHash('sha256').update(`flag-server:${identity}`).digest('hex').slice(0, 24)}}`;

// The provider's methods run in Pulumi's dynamic-provider process, so everything they need is
// required inside them.
const flagServer = {
  async create(inputs) {
    const { spawn } = require('node:child_process');
    const net = require('node:net');
    const server = `
      const net = require('node:net');
      // A client gone before the flag is written (a reset) must not bring the service down.
      const s = net.createServer((c) => {
        c.on('error', () => undefined);
        c.end(process.env.FLAG + '\\n');
      });
      s.listen(0, '127.0.0.1', () => console.log(s.address().port));
      process.on('SIGTERM', () => s.close(() => process.exit(0)));
    `;
    const child = spawn(process.execPath, ['-e', server], {
      env: { FLAG: inputs.flag },
      detached: true,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const port = await new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`flag server exited with ${code}`)));
      child.stdout.once('data', (d) => resolve(Number(String(d).trim())));
    });
    child.stdout.destroy();
    child.unref();
    // Health check: the service answers before the resource is reported created.
    const banner = await new Promise((resolve, reject) => {
      const c = net.connect(port, '127.0.0.1');
      let data = '';
      c.on('data', (d) => (data += d));
      c.on('end', () => resolve(data));
      c.on('error', reject);
    });
    if (banner.trim() !== inputs.flag) throw new Error('flag server answered something else');
    return { id: String(child.pid), outs: { ...inputs, port, pid: child.pid } };
  },
  async diff(_id, olds, news) {
    // A new flag needs a new process: replace, stopping the old one first.
    return olds.flag === news.flag
      ? { changes: false }
      : { changes: true, replaces: ['flag'], deleteBeforeReplace: true };
  },
  async delete(_id, outs) {
    try {
      process.kill(outs.pid, 'SIGTERM');
    } catch (err) {
      if (err.code !== 'ESRCH') throw err;
      return;
    }
    for (let i = 0; i < 100; i++) {
      try {
        process.kill(outs.pid, 0);
      } catch {
        return;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    process.kill(outs.pid, 'SIGKILL');
  },
};

const service = new pulumi.dynamic.Resource(flagServer, 'flag-server', {
  flag,
  port: undefined,
  pid: undefined,
});

exports.connection_info = pulumi.interpolate`nc 127.0.0.1 ${service.port}`;
exports.flags = [flag];
// chall-manager hands the instance out only once this accepts connections.
exports.readiness = pulumi.interpolate`tcp://127.0.0.1:${service.port}`;
