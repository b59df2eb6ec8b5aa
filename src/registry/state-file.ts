// The proxy's saved view (`--state-file PATH`, after SmartStack synapse's state file): the
// targets as last seen, written atomically (write a temp file, rename it over the old one) and
// debounced whenever the view changes. At start-up, before ZooKeeper delivers a view, the saved
// one is served so a proxy that starts during an outage routes instead of answering 503; the
// live view replaces it as soon as it arrives, whatever it says (an empty live view included).
// A missing, unreadable or corrupt file is a warning, never a failed start.
import { readFile, rename, unlink, writeFile } from 'node:fs/promises'
import type { Logger } from 'pino'
import { decodeTarget } from './codec.js'
import type { Admission, Snapshot, TargetInfo, TargetSet } from './target-set.js'

const FORMAT = 1
// A flush tick rewrites one target's count a few times a second: one write per second at most.
const DEFAULT_DEBOUNCE_MS = 1000

interface SavedTarget {
  readonly name: string
  /** The znode's data as it was (decoded again, with the same rules, when read back). */
  readonly data: string
  readonly generation: string
  readonly version: number
}

interface StateFileContent {
  readonly format: number
  readonly savedAt: string
  readonly targetsPath: string
  readonly targets: readonly SavedTarget[]
}

export interface SavedView {
  readonly savedAt: number
  readonly targets: readonly TargetInfo[]
}

/** What the admin side reads: whether the saved view is being served, and from when it is. */
export interface SavedViewStatus {
  readonly path: string
  readonly inUse: boolean
  readonly savedAt: number | undefined
}

export interface StateFileOptions {
  readonly path: string
  readonly targetsPath: string
  readonly targets: TargetSet
  /** Hands a view to the counter and router (the same as a live snapshot). */
  readonly apply: (targets: readonly TargetInfo[]) => void
  /** The proxy's target admission: a saved target it would refuse now is left out. */
  readonly admit?: (t: TargetInfo) => Admission
  readonly logger: Logger
  readonly debounceMs?: number
}

export interface StateFile {
  readonly status: SavedViewStatus
  /** Writes a pending change now and stops watching the view. */
  close (): Promise<void>
}

/** Reads a saved view; undefined (with one warning saying why) when there is none to use. */
export async function readStateFile (path: string, targetsPath: string, log: Logger, admit?: (t: TargetInfo) => Admission): Promise<SavedView | undefined> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    log.warn({ stateFile: path, code }, code === 'ENOENT' ? 'state file not found: starting without a saved view' : 'state file unreadable: starting without a saved view')
    return undefined
  }
  const content = parse(text)
  if (typeof content === 'string') {
    log.warn({ stateFile: path, reason: content }, 'state file corrupt: starting without a saved view')
    return undefined
  }
  if (content.targetsPath !== targetsPath) {
    log.warn({ stateFile: path, saved: content.targetsPath, targetsPath }, 'state file holds another targets path: starting without a saved view')
    return undefined
  }
  const targets: TargetInfo[] = []
  for (const s of content.targets) {
    const r = decodeTarget(s.name, Buffer.from(s.data, 'utf8'))
    if (!r.ok) {
      log.warn({ stateFile: path, target: s.name, reason: r.reason }, 'saved target ignored')
      continue
    }
    const t: TargetInfo = {
      name: s.name,
      url: r.target.url,
      origin: r.target.origin,
      requests: r.target.requests,
      revision: r.target.revision,
      startedAt: r.target.startedAt,
      routes: r.target.routes ?? [],
      stripPrefix: r.target.stripPrefix === true,
      generation: s.generation,
      version: s.version,
      bare: /^\s*\d+\s*$/.test(s.data),
      countedBy: r.target.countedBy
    }
    // Refused by the policy in force now: left out. `{ wait }` (an ACL still to be read) is not
    // a refusal: the target was admitted when it was saved.
    if (typeof admit?.(t) === 'string') continue
    targets.push(t)
  }
  return { savedAt: Date.parse(content.savedAt), targets }
}

function parse (text: string): StateFileContent | string {
  let v: unknown
  try { v = JSON.parse(text) } catch (err) { return `not JSON (${(err as Error).message})` }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return 'not a JSON object'
  const o = v as Record<string, unknown>
  if (o['format'] !== FORMAT) return `unknown format ${JSON.stringify(o['format'])}`
  if (typeof o['savedAt'] !== 'string' || Number.isNaN(Date.parse(o['savedAt']))) return '"savedAt" is not a time'
  if (typeof o['targetsPath'] !== 'string') return '"targetsPath" is missing'
  if (!Array.isArray(o['targets'])) return '"targets" is not a list'
  for (const t of o['targets'] as unknown[]) {
    const s = t as Partial<SavedTarget> | null
    if (s === null || typeof s !== 'object' || typeof s.name !== 'string' || typeof s.data !== 'string' || typeof s.generation !== 'string' || typeof s.version !== 'number') return 'a target entry is malformed'
  }
  return o as unknown as StateFileContent
}

function serialize (snapshot: Snapshot, targetsPath: string): string {
  const held = new Set(snapshot.held ?? [])
  const content: StateFileContent = {
    format: FORMAT,
    savedAt: new Date().toISOString(),
    targetsPath,
    // Targets kept only by the re-registration grace are not saved: they may never come back.
    targets: snapshot.targets.filter(t => !held.has(t.name)).map(t => ({ name: t.name, data: dataOf(t), generation: t.generation, version: t.version }))
  }
  return JSON.stringify(content) + '\n'
}

function dataOf (t: TargetInfo): string {
  if (t.bare) return String(t.requests)
  const o: Record<string, unknown> = { url: t.url, requests: t.requests }
  if (t.revision !== undefined) o['revision'] = t.revision
  if (t.startedAt !== undefined) o['startedAt'] = t.startedAt
  if (t.countedBy !== undefined) o['countedBy'] = t.countedBy
  return JSON.stringify(o)
}

/**
 * Serves the saved view until the live one arrives, and keeps the file up to date. Call before
 * the target set starts, so the saved view can never replace a live one.
 */
export async function useStateFile (opts: StateFileOptions): Promise<StateFile> {
  const log = opts.logger
  const status: { path: string, inUse: boolean, savedAt: number | undefined } = { path: opts.path, inUse: false, savedAt: undefined }
  const saved = await readStateFile(opts.path, opts.targetsPath, log, opts.admit)
  if (saved !== undefined && opts.targets.snapshot === undefined) {
    opts.apply(saved.targets)
    status.inUse = true
    status.savedAt = saved.savedAt
    log.info({ stateFile: opts.path, savedAt: new Date(saved.savedAt).toISOString(), targets: saved.targets.map(t => t.name) }, `serving the saved view (${saved.targets.length} targets) until ZooKeeper delivers one`)
  }

  let latest: Snapshot | undefined
  let timer: NodeJS.Timeout | undefined
  let writing: Promise<void> = Promise.resolve()
  let failed: string | undefined
  const write = async (snapshot: Snapshot): Promise<void> => {
    const tmp = `${opts.path}.${process.pid}.tmp`
    try {
      await writeFile(tmp, serialize(snapshot, opts.targetsPath), { mode: 0o600 })
      await rename(tmp, opts.path)
      if (failed !== undefined) log.info({ stateFile: opts.path }, 'state file written again')
      failed = undefined
    } catch (err) {
      await unlink(tmp).catch(() => {})
      const code = (err as NodeJS.ErrnoException).code ?? 'error'
      // One warning per kind of failure, not one per view change.
      if (failed !== code) log.warn({ err, stateFile: opts.path }, 'state file could not be written')
      failed = code
    }
  }
  const flush = (): void => {
    clearTimeout(timer)
    timer = undefined
    const snap = latest
    latest = undefined
    if (snap !== undefined) writing = writing.then(async () => { await write(snap) })
  }
  const onSnapshot = (snap: Snapshot): void => {
    if (status.inUse) {
      status.inUse = false
      log.info({ stateFile: opts.path, targets: snap.targets.length }, 'live view from ZooKeeper replaces the saved one')
    }
    latest = snap
    if (timer === undefined) {
      timer = setTimeout(flush, opts.debounceMs ?? DEFAULT_DEBOUNCE_MS)
      timer.unref()
    }
  }
  opts.targets.on('snapshot', onSnapshot)
  return {
    status,
    close: async () => {
      opts.targets.off('snapshot', onSnapshot)
      flush()
      await writing
    }
  }
}
