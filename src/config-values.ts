// The kinds of value a flag takes: each parses one string (from argv or the environment),
// throws commander's InvalidArgumentError with the reason (commander then names the flag or
// the variable), and says for --help what unit and range it accepts. The flag table in
// src/config.ts picks one per flag; nothing here knows any flag.
import { InvalidArgumentError } from 'commander'
import { validateTargetName } from './registry/codec.js'

export interface ValueType<T> {
  readonly parse: (text: string) => T
  /** Unit and range for --help, e.g. "ms, 0-600000"; empty when the description says it all. */
  readonly hint: string
}

export interface HostPort { readonly host: string, readonly port: number }

export interface ZkAuth { readonly scheme: string, readonly credential: string }

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = typeof LOG_LEVELS[number]

// ---- numbers ----

function wholeNumber (min: number, max: number): (v: string) => number {
  return (v) => {
    const s = v.trim()
    if (!/^\d+$/.test(s)) throw new InvalidArgumentError(`expected a whole number, got "${v}"`)
    const n = Number(s)
    if (n < min || n > max) throw new InvalidArgumentError(`must be between ${min} and ${max}`)
    return n
  }
}

function range (min: number, max: number): string {
  return max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `${min}-${max}`
}

/** A duration in milliseconds (the field's name ends in Ms). */
export function millis (min: number, max: number): ValueType<number> {
  return { parse: wholeNumber(min, max), hint: `ms, ${range(min, max)}` }
}

/** A duration in seconds (the field's name ends in Sec). */
export function seconds (min: number, max: number): ValueType<number> {
  return { parse: wholeNumber(min, max), hint: `seconds, ${range(min, max)}` }
}

/** A count of things: attempts, entries, replicas. */
export function count (min: number, max = Number.MAX_SAFE_INTEGER): ValueType<number> {
  return { parse: wholeNumber(min, max), hint: range(min, max) }
}

const BYTE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3 }

/** Sizes like 1048576, 512k, 1MiB, 2g (binary units); the field's name ends in Bytes. */
export const bytes: ValueType<number> = {
  hint: 'bytes; k, MiB, g accepted',
  parse: (v) => {
    const m = /^(\d+)\s*([a-z]*)$/i.exec(v.trim())
    const unit = m === null ? undefined : BYTE_UNITS[m[2]!.toLowerCase()]
    if (m === null || unit === undefined) throw new InvalidArgumentError(`expected a size like 1048576, 512k or 1MiB, got "${v}"`)
    return Number(m[1]) * unit
  }
}

// ---- addresses ----

function checkPort (text: string, allowZero: boolean): number {
  const port = Number(text)
  if (!/^\d{1,5}$/.test(text) || port > 65535 || (port === 0 && !allowZero)) {
    throw new InvalidArgumentError(`port must be ${allowZero ? '0' : '1'}-65535, got ${text}`)
  }
  return port
}

/** `host:port`, `:port` (all interfaces), `[::1]:port`; port 0 (any free port) where allowed. */
export function hostPort (allowZero: boolean): ValueType<HostPort> {
  return {
    hint: '',
    parse: (v) => {
      const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]*)):(\d+)$/.exec(v.trim())
      if (m === null) throw new InvalidArgumentError(`expected host:port (e.g. 127.0.0.1:9000 or [::1]:9000), got "${v}"`)
      const port = checkPort(m[3]!, allowZero)
      const host = m[1] ?? (m[2] === '' ? '0.0.0.0' : m[2]!)
      return { host, port }
    }
  }
}

/**
 * A value that says "none" explicitly (e.g. `--admin off`): the config field reads undefined.
 * A parser cannot return undefined itself, which commander would turn into "".
 */
export const NONE: unique symbol = Symbol('none')

/** A host:port listener, or "off" to run without it. */
export function hostPortOrOff (allowZero: boolean): ValueType<HostPort | typeof NONE> {
  const inner = hostPort(allowZero)
  return { hint: '', parse: (v) => v.trim() === 'off' ? NONE : inner.parse(v) }
}

/** A TCP port for a server: 1-65535, or 0 for any free one. */
export const port: ValueType<number> = { hint: '0-65535', parse: (v) => checkPort(v.trim(), true) }

function checkZnodePath (v: string): string {
  const s = v.trim()
  if (!/^(\/[^/\s]+)+$/.test(s)) throw new InvalidArgumentError(`expected an absolute znode path like /targets, got "${v}"`)
  if (s.split('/').some(seg => seg === '.' || seg === '..' || seg === 'zookeeper')) throw new InvalidArgumentError(`znode path may not use ".", ".." or "zookeeper": "${v}"`)
  return s
}

/** An absolute ZooKeeper path such as /targets (no trailing slash, no empty segments). */
export const znodePath: ValueType<string> = { hint: '', parse: checkZnodePath }

/** ZooKeeper connect string: host:port[,host:port...][/chroot], every port 1-65535. */
export const connectString: ValueType<string> = {
  hint: '',
  parse: (v) => {
    const s = v.trim()
    const [hosts, ...chroot] = s.split('/')
    for (const h of (hosts ?? '').split(',')) {
      const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):(\d+)$/.exec(h)
      if (m === null) throw new InvalidArgumentError(`expected host:port[,host:port...][/chroot], got "${v}"`)
      checkPort(m[2]!, false)
    }
    if (chroot.length > 0) checkZnodePath(`/${chroot.join('/')}`)
    return s
  }
}

export const httpUrl: ValueType<URL> = {
  hint: '',
  parse: (v) => {
    let u: URL
    try { u = new URL(v) } catch { throw new InvalidArgumentError(`expected an http(s) URL, got "${v}"`) }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new InvalidArgumentError(`expected http: or https:, got "${u.protocol}"`)
    return u
  }
}

export const requestPath: ValueType<string> = {
  hint: '',
  parse: (v) => {
    if (!v.startsWith('/') || /\s/.test(v)) throw new InvalidArgumentError(`expected a path starting with /, got "${v}"`)
    return v
  }
}

// ---- names and words ----

/** Free text, trimmed (revisions, host names, file paths). */
export const text: ValueType<string> = { hint: '', parse: (v) => v.trim() }

/** A file or folder path, taken as given. */
export const filePath: ValueType<string> = { hint: '', parse: (v) => v }

/** Target and proxy ids: the same rules as znode names read back (registry/codec.ts). */
export const targetName: ValueType<string> = {
  hint: '',
  parse: (v) => {
    const reason = validateTargetName(v)
    if (reason !== undefined) throw new InvalidArgumentError(reason)
    return v
  }
}

export function oneOf<const T extends string> (choices: readonly T[]): ValueType<T> {
  return {
    hint: choices.join(', '),
    parse: (v) => {
      const s = v.trim()
      if (!(choices as readonly string[]).includes(s)) throw new InvalidArgumentError(`expected one of ${choices.join(', ')}, got "${v}"`)
      return s as T
    }
  }
}

export const logLevel = oneOf(LOG_LEVELS)

export const zkAuth: ValueType<ZkAuth> = {
  hint: '',
  parse: (v) => {
    const i = v.indexOf(':')
    if (i <= 0 || i === v.length - 1) throw new InvalidArgumentError('expected scheme:credential, e.g. digest:user:password')
    return { scheme: v.slice(0, i), credential: v.slice(i + 1).trim() }
  }
}
