// The admin listener's controls: eject or drain a target on this proxy only (nothing is written
// to ZooKeeper; other proxies keep their own view). They exist only on the admin listener, which
// is loopback by default. A browser on the operator's machine may be made to send a simple
// cross-site POST to 127.0.0.1; requiring a custom header makes any cross-site attempt a CORS
// preflight that this listener never approves, so only same-origin pages (the dashboard) and
// tools such as curl can act.
import type { Logger } from 'pino'
import type { RuntimeView } from './runtime-view.js'
import { targetRows } from './state.js'

/** The header a control request must carry, naming its action (`eject`, `drain`, `undrain`). */
export const ACTION_HEADER = 'x-zkproxy-action'
/** An operator's ejection lasts this long unless `?seconds=` says otherwise (1..3600). */
export const DEFAULT_EJECT_SEC = 60

export type Action = 'eject' | 'drain' | 'undrain'
export const ACTIONS: readonly Action[] = ['eject', 'drain', 'undrain']

export interface ControlAnswer { readonly statusCode: number, readonly body: unknown }

/** POST /targets/:name/<action>: the answer, having acted when it is 200. */
export function control (v: RuntimeView, log: Logger, action: Action, name: string, headers: Record<string, unknown>, query: Record<string, unknown>): ControlAnswer {
  if (headers[ACTION_HEADER] !== action) {
    return { statusCode: 403, body: { error: 'missing_action_header', message: `send the header ${ACTION_HEADER}: ${action} (it keeps other web pages from acting through your browser)` } }
  }
  let seconds = DEFAULT_EJECT_SEC
  if (action === 'eject' && query['seconds'] !== undefined) {
    const raw = String(query['seconds'])
    seconds = Number(raw)
    if (!/^\d+$/.test(raw) || seconds < 1 || seconds > 3600) return { statusCode: 400, body: { error: 'bad_seconds', message: `seconds: expected a whole number from 1 to 3600, got "${raw}"` } }
  }
  const t = v.router.byName(name)
  if (t === undefined) return { statusCode: 404, body: { error: 'no_target', message: `no live target named ${name}` } }
  const e = v.router.ejections
  if (action === 'eject') e.eject(t.name, t.generation, seconds * 1000)
  else e.drain(t.name, t.generation, action === 'drain')
  const done = action === 'eject' ? 'ejected' : action === 'drain' ? 'drained' : 'undrained'
  log.warn({ target: name, action, ...(action === 'eject' ? { seconds } : {}) }, `target ${done} by an operator (this proxy only)`)
  return { statusCode: 200, body: targetRows(v).find(r => r.name === name) }
}
