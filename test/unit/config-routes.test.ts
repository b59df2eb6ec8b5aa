// `--route` as parsed by src/config.ts for `replica` and `register`: repeatable, comma-separated
// in its env twin ZKPROXY_ROUTE, validated at parse time with one line naming the bad value.
import { Command, CommanderError } from 'commander'
import { afterEach, describe, expect, it } from 'vitest'
import { commandOptions, registerConfig, replicaConfig } from '../../src/config.js'

function replica (args: string[]): ReturnType<typeof replicaConfig> {
  const cmd = commandOptions.replica(new Command('replica').exitOverride().configureOutput({ writeErr: () => {} }))
  cmd.parse(['--port', '0', ...args], { from: 'user' })
  return replicaConfig(cmd.opts())
}

function register (args: string[]): ReturnType<typeof registerConfig> {
  const cmd = commandOptions.register(new Command('register').exitOverride().configureOutput({ writeErr: () => {} }))
  cmd.parse(['--url', 'http://127.0.0.1:4000', ...args], { from: 'user' })
  return registerConfig(cmd.opts())
}

/** The commander error a parse throws (the CLI prints its message as its one line, exit 2). */
function parseError (parse: () => unknown): CommanderError {
  try {
    parse()
  } catch (err) {
    if (err instanceof CommanderError) return err
    throw err
  }
  throw new Error('expected the parse to fail')
}

afterEach(() => { delete process.env['ZKPROXY_ROUTE'] })

describe('--route', () => {
  it('is empty by default: the default pool', () => {
    expect(replica([]).routes).toStrictEqual([])
    expect(register([]).routes).toStrictEqual([])
  })

  it('is repeatable, keeps the values as given, and the config is frozen', () => {
    const c = replica(['--route', 'Shop.example.com', '--route', 'example.com/api/'])
    expect(c.routes).toStrictEqual(['Shop.example.com', 'example.com/api/'])
    expect(Object.isFrozen(c.routes)).toBe(true)
    expect(register(['--route', '*.example.com', '--route', 'a.example.com,b.example.com']).routes)
      .toStrictEqual(['*.example.com', 'a.example.com', 'b.example.com'])
  })

  it('reads ZKPROXY_ROUTE, comma-separated, when the flag is not given; the flag wins', () => {
    process.env['ZKPROXY_ROUTE'] = 'shop.example.com, example.com/api'
    expect(replica([]).routes).toStrictEqual(['shop.example.com', 'example.com/api'])
    expect(register([]).routes).toStrictEqual(['shop.example.com', 'example.com/api'])
    expect(replica(['--route', 'blog.example.com']).routes).toStrictEqual(['blog.example.com'])
  })

  const bad: Array<[value: string, reason: RegExp]> = [
    ['', /empty/],
    ['/api', /empty host/],
    ['example.com:8080', /port/],
    ['http://example.com', /scheme/],
    ['exa mple.com', /whitespace/],
    ['*.*.example.com', /more than one/],
    ['example.com,', /empty/]
  ]
  it.each(bad)('refuses %j with one line naming the flag and the value', (value, reason) => {
    for (const parse of [() => replica(['--route', 'ok.example.com', '--route', value]), () => register(['--route', value])]) {
      const err = parseError(parse)
      expect(err.code).toBe('commander.invalidArgument')
      expect(err.message).toContain('--route')
      expect(err.message).toContain(value)
      expect(err.message).toMatch(reason)
      expect(err.message.trim()).not.toContain('\n')
    }
  })

  it('refuses a bad ZKPROXY_ROUTE naming the variable and the value', () => {
    process.env['ZKPROXY_ROUTE'] = 'good.example.com,bad.example.com:81'
    const err = parseError(() => replica([]))
    expect(err.message).toContain('ZKPROXY_ROUTE')
    expect(err.message).toContain('bad.example.com:81')
    expect(err.message).toMatch(/port/)
  })

  it('--strip-prefix is off by default, and needs a route with a path prefix', () => {
    expect(replica(['--route', 'example.com/api']).stripPrefix).toBe(false)
    expect(replica(['--route', 'example.com/api', '--strip-prefix']).stripPrefix).toBe(true)
    expect(register(['--route', 'shop.example.com', '--route', 'example.com/api/', '--strip-prefix']).stripPrefix).toBe(true)
    expect(() => replica(['--strip-prefix'])).toThrow(/--strip-prefix needs a --route with a path prefix/)
    expect(() => register(['--route', 'shop.example.com', '--strip-prefix'])).toThrow(/--strip-prefix needs a --route with a path prefix/)
  })
})
