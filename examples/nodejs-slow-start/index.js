// Scenario: a TCP service on 127.0.0.1 answering the instance's flag, which starts listening
// only `additional.delay` seconds (default 3) after its deployment finished, as a service that
// takes time to boot does. Its `readiness` output makes chall-manager wait for it before it
// hands the instance out. It needs no node_modules: chall-manager provides @pulumi/pulumi.
//
// Config (set by chall-manager): `identity` (16 hex chars), `additional` (JSON object of strings).
// Recognised additional keys: `delay` (seconds before listening, default 3), `prefix` (flag
// prefix, default "CTF").
const pulumi = require('@pulumi/pulumi');
const { createHash } = require('node:crypto');

const config = new pulumi.Config();
const identity = config.require('identity');
const additional = config.getObject('additional') || {};
const prefix = additional.prefix || 'CTF';
const delay = Number(additional.delay || '3');
if (!Number.isFinite(delay) || delay < 0)
  throw new Error('additional.delay: not a number of seconds');
const flag = `${prefix}{${createHash('sha256').update(`slow-start:${identity}`).digest('hex').slice(0, 24)}}`;

// The provider's methods run in Pulumi's dynamic-provider process, so everything they need is
// required inside them.
const slowServer = {
  async create(inputs) {
    const { spawn } = require('node:child_process');
    const net = require('node:net');
    /** A port free right now, drawn at random between 10000 and the start of the ephemeral range. */
    async function freePortBelowEphemeral() {
      const { readFileSync } = require('node:fs');
      let low = 32768;
      try {
        low = Number(
          readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0],
        );
      } catch {
        // Not Linux: the range most systems use.
      }
      const top = Number.isInteger(low) && low > 11000 ? low : 32768;
      for (let attempt = 0; attempt < 100; attempt++) {
        const port = 10000 + Math.floor(Math.random() * (top - 10000));
        const free = await new Promise((resolve) => {
          const probe = net.createServer();
          probe.once('error', () => resolve(false));
          probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
        });
        if (free) return port;
      }
      throw new Error('no free port below the ephemeral range');
    }
    // A free port, known before the service listens (the connection info names it). The service
    // takes it once its delay is over; should another process have taken it meanwhile, it keeps
    // trying, and the instance simply never becomes ready. The port is drawn below the kernel's
    // ephemeral range: a port the kernel hands out (to `listen(0)`, to outgoing connections) could
    // be given to another program during the delay, which would then answer in this one's place.
    const port = await freePortBelowEphemeral();
    const server = `
      const net = require('node:net');
      // A client gone before the flag is written (a reset) must not bring the service down.
      const s = net.createServer((c) => {
        c.on('error', () => undefined);
        c.end(process.env.FLAG + '\\n');
      });
      let stopping = false;
      const listen = () => { if (!stopping) s.listen(Number(process.env.PORT), '127.0.0.1'); };
      s.on('error', (err) => {
        if (err.code !== 'EADDRINUSE') throw err;
        setTimeout(listen, 200);
      });
      setTimeout(listen, Number(process.env.DELAY_MS));
      process.on('SIGTERM', () => {
        stopping = true;
        if (s.listening) s.close(() => process.exit(0));
        else process.exit(0);
      });
    `;
    // Detached, in a session of its own, and with no pipe to this process: the service outlives
    // the provider (Pulumi stops it after the deployment) and never writes to a closed pipe.
    const child = spawn(process.execPath, ['-e', server], {
      env: { FLAG: inputs.flag, PORT: String(port), DELAY_MS: String(inputs.delayMs) },
      detached: true,
      stdio: 'ignore',
    });
    await new Promise((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    child.unref();
    return { id: String(child.pid), outs: { ...inputs, port, pid: child.pid } };
  },
  async diff(_id, olds, news) {
    return olds.flag === news.flag && olds.delayMs === news.delayMs
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

const service = new pulumi.dynamic.Resource(slowServer, 'slow-server', {
  flag,
  delayMs: Math.round(delay * 1000),
  port: undefined,
  pid: undefined,
});

exports.connection_info = pulumi.interpolate`nc 127.0.0.1 ${service.port}`;
exports.flags = [flag];
exports.readiness = pulumi.interpolate`tcp://127.0.0.1:${service.port}`;
