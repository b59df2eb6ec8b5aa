// Test helpers around the session layer: sessions that are always closed in teardown, a
// silent logger, a unique base path per test so tests sharing a ZooKeeper never collide.
import { randomBytes } from 'node:crypto'
import pino, { type Logger } from 'pino'
import { ZkSession } from '../../src/zk/index.js'
import { ms } from './until.js'

// ZKPROXY_TEST_LOG=debug shows the session layer's logs while debugging a test.
export const silentLogger: Logger = pino({ level: process.env['ZKPROXY_TEST_LOG'] ?? 'silent' })

const open = new Set<ZkSession>()

export interface ConnectOptions {
  sessionTimeoutMs?: number
  logger?: Logger
  /** Credentials for every new session, e.g. [{ scheme: 'digest', credential: 'replica:pw' }]. */
  auth?: ReadonlyArray<{ scheme: string, credential: string }>
}

export async function connectSession (connect: string, opts: ConnectOptions = {}): Promise<ZkSession> {
  const session = new ZkSession({
    connect,
    sessionTimeoutMs: opts.sessionTimeoutMs ?? 4000,
    logger: opts.logger ?? silentLogger,
    backoff: { initialMs: 50, maxMs: 1000 },
    ...(opts.auth === undefined ? {} : { auth: opts.auth })
  }).start()
  open.add(session)
  await session.waitConnected(ms(20_000))
  return session
}

/** Starts a session without waiting for it (e.g. with ZooKeeper down). */
/** Tracks a session built elsewhere (e.g. a subclass) so teardown closes it. */
export function trackSession<T extends ZkSession> (session: T): T {
  open.add(session)
  return session
}

export function startSession (connect: string, sessionTimeoutMs = 4000): ZkSession {
  const session = new ZkSession({ connect, sessionTimeoutMs, logger: silentLogger, backoff: { initialMs: 50, maxMs: 1000 } }).start()
  open.add(session)
  return session
}

export async function closeAllSessions (): Promise<void> {
  const all = [...open]
  open.clear()
  await Promise.all(all.map(async s => { await s.close() }))
}

export function uniquePath (prefix = 't'): string {
  return `/${prefix}-${randomBytes(4).toString('hex')}`
}

/** A fresh chroot under `connect` for one test file: the connect string that sees it as "/". */
export async function chrootConnect (connect: string, prefix: string): Promise<string> {
  const chroot = uniquePath(prefix)
  await (await connectSession(connect)).mkdirp(chroot)
  return `${connect}${chroot}`
}
