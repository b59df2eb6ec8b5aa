// The content revision a replica publishes in its target znode and, when it is new to the
// fleet, in /cacheAge (docs/znodes.md): proxies drop cached answers of a
// revision once no live target of its pool carries it, so it must change exactly when the served
// content does. An explicit --revision wins; else the git commit of the served folder's
// repository; else a hash of the folder's content (same files, same revision: a restart, in a
// container too, changes nothing). A backend registered without --revision and without a
// folder has none: nothing can be derived from a process we cannot see into.
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { join, posix } from 'node:path'
import { createError, hasCode } from '../errors.js'
import { CreateMode, type DataValue, type ZkSession } from '../zk/index.js'
import { decodeRevision, encodeRevision } from './codec.js'

export type RevisionSource = 'flag' | 'git' | 'content' | 'none'

export interface ContentRevision {
  /** Undefined: no revision (`register` without --revision); nothing is published. */
  readonly revision: string | undefined
  readonly source: RevisionSource
}

export interface RevisionOptions {
  /** `--revision`, taken as given (trimmed). */
  readonly revision?: string | undefined
  /** The served folder: its repository's HEAD, else its content's hash, is the revision. */
  readonly dir?: string | undefined
  /** A hung git (network file system, lock) must not hold up start-up. */
  readonly gitTimeoutMs?: number
}

const DEFAULT_GIT_TIMEOUT_MS = 2000

// Variables that would point git at another repository than the one holding `dir`.
const GIT_LOCATION_VARS = ['GIT_DIR', 'GIT_WORK_TREE', 'GIT_INDEX_FILE', 'GIT_CEILING_DIRECTORIES', 'GIT_COMMON_DIR']

export async function contentRevision (opts: RevisionOptions): Promise<ContentRevision> {
  const given = opts.revision?.trim()
  if (given !== undefined && given !== '') return { revision: given, source: 'flag' }
  if (opts.dir === undefined) return { revision: undefined, source: 'none' }
  const commit = await gitHead(opts.dir, opts.gitTimeoutMs ?? DEFAULT_GIT_TIMEOUT_MS)
  if (commit !== undefined) return { revision: commit, source: 'git' }
  return { revision: await contentHash(opts.dir), source: 'content' }
}

/**
 * A short hash of everything under `dir` a static server could serve: each regular file's path
 * (relative, `/`-separated) and bytes, in sorted path order, so neither the walk order nor
 * timestamps (a container build, a copy) change it. `.git` is left out: it is history, not
 * content. A folder that cannot be read hashes what could be read; a missing one hashes empty.
 */
export async function contentHash (dir: string): Promise<string> {
  const files: string[] = []
  const walk = async (rel: string): Promise<void> => {
    let entries
    try {
      entries = await readdir(join(dir, rel), { withFileTypes: true })
    } catch {
      return
    }
    for (const e of entries) {
      const path = rel === '' ? e.name : `${rel}/${e.name}`
      if (e.isDirectory()) {
        if (e.name !== '.git') await walk(path)
      } else if (e.isFile()) {
        files.push(path)
      }
    }
  }
  await walk('')
  files.sort()
  const hash = createHash('sha256')
  for (const path of files) {
    // Length-prefixed, so a name can never run into the bytes of the file before it.
    const name = Buffer.from(path)
    hash.update(`${name.length}:`).update(name)
    const content = createHash('sha256')
    try {
      for await (const chunk of createReadStream(join(dir, path))) content.update(chunk as Buffer)
    } catch {
      // Gone or unreadable between the walk and the read: it is served by no one either.
    }
    hash.update(content.digest())
  }
  return `sha256-${hash.digest('hex').slice(0, 16)}`
}

/**
 * `git -C dir rev-parse --short HEAD`, or undefined when git is missing, `dir` is not in a
 * repository, the repository has no commit yet, or git does not answer in time. No shell, so a
 * folder name is never interpreted.
 */
export async function gitHead (dir: string, timeoutMs = DEFAULT_GIT_TIMEOUT_MS): Promise<string | undefined> {
  const env: NodeJS.ProcessEnv = { ...process.env, GIT_TERMINAL_PROMPT: '0', LC_ALL: 'C' }
  for (const v of GIT_LOCATION_VARS) delete env[v]
  return await new Promise<string | undefined>((resolve) => {
    execFile('git', ['-C', dir, 'rev-parse', '--short', 'HEAD'], { timeout: timeoutMs, killSignal: 'SIGKILL', env, windowsHide: true }, (err, stdout) => {
      const commit = String(stdout).trim()
      // A short hash only: anything else (a warning, "HEAD" echoed back) is not a revision.
      resolve(err === null && /^[0-9a-f]{4,64}$/.test(commit) ? commit : undefined)
    })
  })
}

/**
 * Publishes `revision` in the persistent node at `path` (parents created as needed): creates it,
 * or sets it when it holds another revision. True when it wrote; ZooKeeper errors propagate.
 */
export async function writeRevision (session: ZkSession, path: string, revision: string): Promise<boolean> {
  const data = encodeRevision(revision)
  const wanted = decodeRevision(data)
  for (let attempt = 0; attempt < 10; attempt++) {
    let current: DataValue | undefined
    try {
      current = await session.get(path)
    } catch (err) {
      if (!hasCode(err, 'ZKPROXY_ERR_ZK_NO_NODE')) throw err
    }
    try {
      if (current === undefined) {
        await session.mkdirp(posix.dirname(path))
        await session.create(path, data, CreateMode.PERSISTENT)
        return true
      }
      // Equal revisions are not rewritten: a write would bump mzxid, and a replica restart
      // with the same content must not look like a change to anyone watching.
      if (decodeRevision(current.data) === wanted) return false
      await session.set(path, data, current.stat.version)
      return true
    } catch (err) {
      // Another replica wrote in between: read again and decide again.
      if (!hasCode(err, 'ZKPROXY_ERR_ZK_NODE_EXISTS') && !hasCode(err, 'ZKPROXY_ERR_ZK_BAD_VERSION') && !hasCode(err, 'ZKPROXY_ERR_ZK_NO_NODE')) throw err
    }
  }
  throw createError('ZKPROXY_ERR_ZK_BAD_VERSION', `${path}: still contended after 10 attempts`)
}
