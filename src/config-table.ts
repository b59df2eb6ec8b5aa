// The machinery behind the flag tables of src/config.ts: one entry per flag (its usage, its
// environment twin, its value type with unit and range, its default, its description), from
// which come the commander option (and so `--help`), and the typed value the config object is
// built from. Adding a flag is adding an entry; nothing else names it.
import { Command, InvalidArgumentError, Option } from 'commander'
import { NONE, type ValueType } from './config-values.js'

export interface Flag<T> {
  /** Commander's usage, e.g. `--drain-ms <ms>`; a switch has no `<arg>`. */
  readonly usage: string
  readonly description: string
  readonly env: string
  readonly kind: 'value' | 'switch' | 'list'
  readonly default?: T
  /** How --help shows the default when the value itself does not read well (objects, lists). */
  readonly defaultText?: string
  readonly required: boolean
  // Method syntax on purpose: a table mixes flags of every type (bivariant parameter).
  parse? (text: string, previous: T): T
}

/** Long flag name of a usage string: `--drain-ms <ms>` → `drain-ms`. */
function longName (usage: string): string {
  const name = /^--([a-z0-9-]+)/.exec(usage)?.[1]
  if (name === undefined) throw new Error(`bad flag usage "${usage}"`)
  return name
}

/** `--flag-name` → ZKPROXY_FLAG_NAME; `--zk` is ZK_CONNECT, the name ZooKeeper's own tools use. */
export function envName (usage: string): string {
  const name = longName(usage)
  return name === 'zk' ? 'ZK_CONNECT' : `ZKPROXY_${name.toUpperCase().replace(/-/g, '_')}`
}

function withHint (description: string, type: ValueType<unknown>): string {
  return type.hint === '' ? description : `${description} (${type.hint})`
}

interface Common { readonly env?: string }

/** A flag taking one value. With a default or `required`, its value is never undefined. */
export function flag<T> (usage: string, description: string, type: ValueType<T>, opts: Common & { readonly default: NoInfer<T>, readonly defaultText?: string }): Flag<T>
export function flag<T> (usage: string, description: string, type: ValueType<T>, opts: Common & { readonly required: true }): Flag<T>
export function flag<T> (usage: string, description: string, type: ValueType<T>, opts?: Common): Flag<T | undefined>
export function flag<T> (usage: string, description: string, type: ValueType<T>, opts: Common & { readonly default?: T, readonly defaultText?: string, readonly required?: boolean } = {}): Flag<T | undefined> {
  return {
    usage,
    description: `${withHint(description, type)}${opts.required === true ? ' (required)' : ''}`,
    env: opts.env ?? envName(usage),
    kind: 'value',
    required: opts.required === true,
    ...(opts.default === undefined ? {} : { default: opts.default }),
    ...(opts.defaultText === undefined ? {} : { defaultText: opts.defaultText }),
    parse: (v) => type.parse(v)
  }
}

/**
 * A flag without a value: false unless given on the command line or its environment twin says
 * 1/true/yes/on (0/false/no/off or empty: false; anything else is refused).
 */
export function toggle (usage: string, description: string, opts: Common = {}): Flag<boolean> {
  return { usage, description, env: opts.env ?? envName(usage), kind: 'switch', required: false, default: false }
}

/**
 * A repeatable flag: each occurrence, and the environment twin, may hold several
 * comma-separated items; given at all, it replaces the default list.
 */
export function list<T> (usage: string, description: string, type: ValueType<T>, opts: Common & { readonly default?: readonly T[], readonly defaultText?: string } = {}): Flag<readonly T[]> {
  const fallback: readonly T[] = opts.default ?? []
  return {
    usage,
    description: withHint(`${description}; repeatable, or comma-separated`, type),
    env: opts.env ?? envName(usage),
    kind: 'list',
    required: false,
    default: fallback,
    defaultText: opts.defaultText ?? (fallback.length === 0 ? 'none' : fallback.join(',')),
    parse: (v, previous) => [
      ...(previous === fallback ? [] : previous),
      ...v.split(',').map(s => type.parse(s.trim()))
    ]
  }
}

export type FlagTable = Readonly<Record<string, Flag<unknown>>>

/** A value type's explicit "none" (see NONE) reads as undefined. */
type Read<V> = typeof NONE extends V ? Exclude<V, typeof NONE> | undefined : V

/** The typed values of a table's flags, keyed like the table. */
export type Values<T extends FlagTable> = { readonly [K in keyof T]: T[K] extends Flag<infer V> ? Read<V> : never }

function toOption (f: Flag<unknown>): Option {
  // A switch's variable is read by readValues: commander would count it as set whatever it says,
  // so ZKPROXY_ACCESS_LOG=false would turn the access log on.
  const o = f.kind === 'switch' ? new Option(f.usage, `${f.description} (env: ${f.env})`) : new Option(f.usage, f.description).env(f.env)
  const parse = f.parse
  if (parse !== undefined) o.argParser((v: string, previous: unknown) => parse(v, previous))
  if (f.default !== undefined && f.kind !== 'switch') o.default(f.default, f.defaultText)
  if (f.required) o.makeOptionMandatory()
  return o
}

export function addFlags (cmd: Command, table: FlagTable): Command {
  for (const f of Object.values(table)) cmd.addOption(toOption(f))
  return cmd
}

/**
 * Commander's parsed options (keyed by its camel-cased flag names) as the table's typed
 * values. Every value came through its flag's own parser or is its default, which is what
 * makes the one cast below true.
 */
export function readValues<T extends FlagTable> (table: T, parsed: Readonly<Record<string, unknown>>): Values<T> {
  const out: Record<string, unknown> = {}
  for (const [key, f] of Object.entries(table)) {
    const value = parsed[toOption(f).attributeName()]
    out[key] = f.kind === 'switch' ? value === true || switchFromEnv(f) : value === undefined ? f.default : value === NONE ? undefined : value
  }
  return out as Values<T>
}

function switchFromEnv (f: Flag<unknown>): boolean {
  const v = process.env[f.env]?.trim().toLowerCase()
  if (v === undefined || v === '' || v === '0' || v === 'false' || v === 'no' || v === 'off') return false
  if (v === '1' || v === 'true' || v === 'yes' || v === 'on') return true
  throw new InvalidArgumentError(`${f.usage}: environment variable ${f.env}="${process.env[f.env] ?? ''}" is not 1/true/yes/on or 0/false/no/off`)
}

export function deepFreeze<T> (o: T): T {
  if (o !== null && typeof o === 'object' && !Object.isFrozen(o) && !(o instanceof URL)) {
    Object.freeze(o)
    for (const v of Object.values(o as object)) deepFreeze(v)
  }
  return o
}

export interface CommandSpec<T extends FlagTable, C> {
  readonly name: string
  /** One line for `zkproxy help`. */
  readonly summary: string
  readonly flags: T
  /** Checks across flags and derived fields; each flag's own value is already valid here. */
  readonly build: (values: Values<T>) => C
}

export interface CommandConfig<C> {
  readonly name: string
  readonly summary: string
  /** Adds the command's flags to a commander command. */
  configure (cmd: Command): Command
  /** The frozen config from commander's parsed options; throws InvalidArgumentError. */
  fromParsed (parsed: Readonly<Record<string, unknown>>): Readonly<C>
  /** Parses flags as given on a command line (tests, and `zkproxy dev` starting its proxy). */
  fromArgs (args: readonly string[]): Readonly<C>
}

export function defineCommand<T extends FlagTable, C> (spec: CommandSpec<T, C>): CommandConfig<C> {
  const configure = (cmd: Command): Command => addFlags(cmd, spec.flags)
  const fromParsed = (parsed: Readonly<Record<string, unknown>>): Readonly<C> => deepFreeze(spec.build(readValues(spec.flags, parsed)))
  return {
    name: spec.name,
    summary: spec.summary,
    configure,
    fromParsed,
    fromArgs: (args) => {
      const cmd = configure(new Command(spec.name).exitOverride().configureOutput({ writeErr: () => {} }))
      cmd.parse([...args], { from: 'user' })
      return fromParsed(cmd.opts())
    }
  }
}
