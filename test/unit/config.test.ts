// The flag tables of src/config.ts: defaults, environment twins, values refused with the flag
// named, repeatable flags, and the config types derived from the tables.
import { Command } from 'commander'
import { afterEach, describe, expect, expectTypeOf, it } from 'vitest'
import { commands, type CommonConfig, type DevConfig, type HostPort, type LogLevel, type ProxyConfig, type RegisterConfig, type ReplicaConfig, type StatusConfig } from '../../src/config.js'
import { defineCommand, flag, list, toggle } from '../../src/config-table.js'
import { count, millis, text } from '../../src/config-values.js'

const touched: string[] = []
function setEnv (name: string, value: string): void {
  touched.push(name)
  process.env[name] = value
}
afterEach(() => {
  for (const name of touched.splice(0)) Reflect.deleteProperty(process.env, name)
})

describe('flag tables', () => {
  it('proxy defaults are the documented ones', () => {
    const c = commands.proxy.fromArgs([])
    expect(c).toMatchObject({
      zk: '127.0.0.1:2181',
      sessionTimeoutMs: 10_000,
      targetsPath: '/targets',
      cacheAgePath: '/cacheAge',
      zkAuth: [],
      zkAcl: undefined,
      logLevel: 'info',
      logPretty: false,
      listen: { host: '0.0.0.0', port: 9000 },
      admin: { host: '127.0.0.1', port: 9901 },
      proxiesPath: '/proxies',
      id: undefined,
      attempts: 3,
      countFlushMs: 250,
      retryBodyLimitBytes: 1024 * 1024,
      bodyLimitBytes: 100 * 1024 * 1024,
      connectTimeoutMs: 2000,
      headersTimeoutMs: 30_000,
      bodyTimeoutMs: 30_000,
      requestTimeoutMs: 30_000,
      keepAliveTimeoutMs: 5000,
      maxHeaderBytes: 16 * 1024,
      maxConnections: 10_000,
      cacheTtlSec: 120,
      cacheDefaultTtlSec: 0,
      cacheMaxEntries: 10_000,
      cacheMaxBytes: 256 * 1024 * 1024,
      cacheMaxObjectBytes: 1024 * 1024,
      staleIfErrorSec: 0,
      accessLog: false,
      drainMs: 5000,
      trustProxy: [],
      tls: undefined,
      upstreamCaFile: undefined
    })
    // Only config fields: the flags that feed a derived field are not in it.
    expect(Object.keys(c)).not.toContain('tlsCert')
    expect(Object.keys(c)).not.toContain('zkAuthFile')
    expect(Object.isFrozen(c)).toBe(true)
    expect(Object.isFrozen(c.listen)).toBe(true)
  })

  it('the demo listens on loopback unless told otherwise', () => {
    expect(commands.dev.fromArgs([])).toEqual({ replicas: 3, listen: { host: '127.0.0.1', port: 9000 }, admin: { host: '127.0.0.1', port: 9901 }, logLevel: 'info', zk: undefined })
  })

  it('every flag reads its environment twin, and the command line wins over it', () => {
    setEnv('ZK_CONNECT', '10.0.0.1:2181,10.0.0.2:2181/app')
    setEnv('ZKPROXY_CACHE_TTL', '7')
    setEnv('ZKPROXY_ACCESS_LOG', '1')
    setEnv('ZKPROXY_ADMIN', 'off')
    setEnv('ZKPROXY_ATTEMPTS', '5')
    const c = commands.proxy.fromArgs(['--attempts', '2'])
    expect(c.zk).toBe('10.0.0.1:2181,10.0.0.2:2181/app')
    expect(c.cacheTtlSec).toBe(7)
    expect(c.accessLog).toBe(true)
    expect(c.admin).toBeUndefined()
    expect(c.attempts).toBe(2)
  })

  it('a switch\'s environment twin says on or off; anything else is refused', () => {
    for (const [value, on] of [['1', true], ['true', true], ['YES', true], ['on', true], ['0', false], ['false', false], ['no', false], ['off', false], ['', false]] as const) {
      setEnv('ZKPROXY_ACCESS_LOG', value)
      expect(commands.proxy.fromArgs([]).accessLog, `ZKPROXY_ACCESS_LOG=${value}`).toBe(on)
    }
    // The command line turns it on whatever the variable says.
    setEnv('ZKPROXY_ACCESS_LOG', 'off')
    expect(commands.proxy.fromArgs(['--access-log']).accessLog).toBe(true)
    setEnv('ZKPROXY_ACCESS_LOG', 'maybe')
    expect(() => commands.proxy.fromArgs([])).toThrow(/--access-log: environment variable ZKPROXY_ACCESS_LOG="maybe" is not/)
  })

  it('--help shows every flag with its environment twin and default', () => {
    for (const spec of Object.values(commands)) {
      const help = spec.configure(new Command(spec.name)).helpInformation()
      const flags = [...help.matchAll(/^ {2}(--[a-z-]+)/gm)].map(m => m[1]!)
      expect(flags.length, spec.name).toBeGreaterThan(3)
      const envs = [...help.replace(/\s+/g, ' ').matchAll(/env: ([A-Z_]+)\)/g)].map(m => m[1])
      expect(envs, spec.name).toEqual(flags.map(f => f === '--zk' ? 'ZK_CONNECT' : `ZKPROXY_${f.slice(2).toUpperCase().replace(/-/g, '_')}`))
    }
    const proxyHelp = commands.proxy.configure(new Command('proxy')).helpInformation().replace(/\s+/g, ' ')
    expect(proxyHelp).toContain('--drain-ms <ms> on SIGTERM, time to finish in-flight requests and open tunnels (ms, 0-600000) (default: 5000, env: ZKPROXY_DRAIN_MS)')
    expect(proxyHelp).toContain('--body-limit <bytes> largest request body accepted (413 above) (bytes; k, MiB, g accepted) (default: 100MiB')
  })

  it('refuses a bad value naming the flag, or the environment variable it came from', () => {
    const cases: Array<[keyof typeof commands, string[], RegExp]> = [
      ['proxy', ['--zk', '127.0.0.1:99999'], /--zk .*port must be 1-65535, got 99999/],
      ['proxy', ['--zk', '127.0.0.1:2181,h:0'], /--zk .*port must be 1-65535, got 0/],
      ['proxy', ['--listen', '127.0.0.1:65536'], /--listen .*port must be 0-65535/],
      ['proxy', ['--admin', 'localhost:123456'], /--admin .*port must be 0-65535/],
      ['proxy', ['--attempts', '0'], /--attempts .*between 1 and 20/],
      ['proxy', ['--body-limit', '12 parsecs'], /--body-limit .*expected a size/],
      ['proxy', ['--log-level', 'loud'], /--log-level .*expected one of/],
      ['replica', ['--port', '65536'], /--port .*port must be 0-65535/],
      ['replica', [], /required option '--port <port>'/],
      ['register', ['--url', 'ftp://x'], /--url .*expected http: or https:/],
      ['dev', ['--zk', 'h:70000'], /--zk .*port must be 1-65535/],
      ['dev', ['--log-level', 'loud'], /--log-level .*expected one of/],
      ['status', ['--timeout-ms', '5'], /--timeout-ms .*between 100 and 600000/]
    ]
    for (const [name, args, error] of cases) expect(() => commands[name].fromArgs(args), `${name} ${args.join(' ')}`).toThrow(error)
    setEnv('ZKPROXY_SESSION_TIMEOUT_MS', 'soon')
    expect(() => commands.status.fromArgs([])).toThrow(/--session-timeout-ms .*from env 'ZKPROXY_SESSION_TIMEOUT_MS' is invalid. expected a whole number/)
  })

  it('a new flag is one table entry: typed value, environment twin, repeatable lists', () => {
    const demo = defineCommand({
      name: 'demo',
      summary: 'a command with one flag of each kind',
      flags: {
        stateFile: flag('--state-file <path>', 'where to keep things', text),
        routes: list('--route <HOST[/PATH-PREFIX]>', 'what this target serves', text),
        workers: flag('--workers <n>', 'processes', count(1, 64), { default: 1 }),
        waitMs: flag('--wait-ms <ms>', 'how long', millis(0, 1000), { required: true }),
        loud: toggle('--loud', 'say more')
      },
      build: (v) => v
    })
    const c = demo.fromArgs(['--wait-ms', '5', '--route', 'a.example', '--route', 'b.example/api/,c.example'])
    expect(c).toEqual({ stateFile: undefined, routes: ['a.example', 'b.example/api/', 'c.example'], workers: 1, waitMs: 5, loud: false })
    expectTypeOf(c.stateFile).toEqualTypeOf<string | undefined>()
    expectTypeOf(c.routes).toEqualTypeOf<readonly string[]>()
    expectTypeOf(c.workers).toEqualTypeOf<number>()
    expectTypeOf(c.loud).toEqualTypeOf<boolean>()

    setEnv('ZKPROXY_ROUTE', 'x.example, y.example/shop/')
    setEnv('ZKPROXY_STATE_FILE', '/var/lib/zkproxy/view.json')
    expect(demo.fromArgs(['--wait-ms', '1'])).toMatchObject({ routes: ['x.example', 'y.example/shop/'], stateFile: '/var/lib/zkproxy/view.json' })
    // The command line replaces the environment's list; it does not add to it.
    expect(demo.fromArgs(['--wait-ms', '1', '--route', 'z.example']).routes).toEqual(['z.example'])
  })

  it('derives the config types from the tables', () => {
    expectTypeOf<ProxyConfig['admin']>().toEqualTypeOf<HostPort | undefined>()
    expectTypeOf<ProxyConfig['listen']>().toEqualTypeOf<HostPort>()
    expectTypeOf<ProxyConfig['id']>().toEqualTypeOf<string | undefined>()
    expectTypeOf<ProxyConfig['trustProxy']>().toEqualTypeOf<readonly string[]>()
    expectTypeOf<ProxyConfig['tls']>().toEqualTypeOf<{ readonly certFile: string, readonly keyFile: string } | undefined>()
    expectTypeOf<ProxyConfig['retryBodyLimitBytes']>().toEqualTypeOf<number>()
    expectTypeOf<ProxyConfig['accessLog']>().toEqualTypeOf<boolean>()
    expectTypeOf<ReplicaConfig['port']>().toEqualTypeOf<number>()
    expectTypeOf<RegisterConfig['url']>().toEqualTypeOf<URL>()
    expectTypeOf<DevConfig['zk']>().toEqualTypeOf<string | undefined>()
    expectTypeOf<StatusConfig['json']>().toEqualTypeOf<boolean>()
    expectTypeOf<CommonConfig['logLevel']>().toEqualTypeOf<LogLevel>()
    expect(commands.register.fromArgs(['--url', 'http://127.0.0.1:4000']).url.origin).toBe('http://127.0.0.1:4000')
  })
})
