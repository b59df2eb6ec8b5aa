// The health checker's thresholds and cadence, with a scripted probe and a manual scheduler
// (no real timers, no sockets).
import { describe, expect, it } from 'vitest'
import { HealthChecker, type CheckEvent, type ProbeResult, type Scheduler } from '../../../src/replica/health-checker.js'

/** Runs scheduled callbacks only when told to; records the delays asked for. */
function manualScheduler (): Scheduler & { delays: number[], pending: number, fire: () => void } {
  const queue: Array<() => void> = []
  const s = {
    delays: [] as number[],
    get pending () { return queue.length },
    setTimeout: (fn: () => void, delay: number) => { s.delays.push(delay); queue.push(fn); return fn },
    clearTimeout: (h: unknown) => { const i = queue.indexOf(h as () => void); if (i >= 0) queue.splice(i, 1) },
    fire: () => { queue.shift()?.() }
  }
  return s
}

const ok: ProbeResult = { status: 200, durationMs: 10 }
const down: ProbeResult = { error: 'connect ECONNREFUSED', durationMs: 5 }
const sick: ProbeResult = { status: 503, durationMs: 5 }

/** A checker whose probe answers from `script` (repeating the last), one check per `step()`. */
function setup (script: ProbeResult[], thresholds = { unhealthyAfter: 2, healthyAfter: 2 }) {
  const timers = manualScheduler()
  const events: string[] = []
  let i = 0
  const checker = new HealthChecker({
    url: new URL('http://127.0.0.1:1/healthz'),
    intervalMs: 100,
    timeoutMs: 50,
    ...thresholds,
    probe: async () => script[Math.min(i++, script.length - 1)]!,
    scheduler: timers
  })
  checker.on('healthy', () => { events.push('healthy') })
  checker.on('unhealthy', () => { events.push('unhealthy') })
  const step = async (): Promise<CheckEvent> => await new Promise((resolve) => {
    checker.once('check', resolve)
    if (i === 0) checker.start()
    else timers.fire()
  })
  return { checker, timers, events, step }
}

describe('HealthChecker', () => {
  it('goes healthy after healthyAfter good checks and unhealthy after unhealthyAfter bad ones', async () => {
    const { checker, events, step } = setup([ok, ok, sick, down, ok, ok])
    expect(checker.status).toBe('unknown')
    await step()
    expect(checker.status).toBe('unknown')
    await step()
    expect(checker.status).toBe('healthy')
    await step()
    expect(events).toEqual(['healthy'])
    await step()
    expect(checker.status).toBe('unhealthy')
    await step()
    await step()
    expect(events).toEqual(['healthy', 'unhealthy', 'healthy'])
  })

  it('does not flap on a single bad answer between good ones', async () => {
    const { events, step } = setup([ok, ok, sick, ok, sick, ok, ok])
    for (let n = 0; n < 7; n++) await step()
    expect(events).toEqual(['healthy'])
  })

  it('counts only 2xx as healthy (3xx and 5xx are failures)', async () => {
    const { events, step } = setup([{ status: 301, durationMs: 1 }, { status: 204, durationMs: 1 }], { unhealthyAfter: 1, healthyAfter: 1 })
    expect((await step()).healthy).toBe(false)
    expect((await step()).healthy).toBe(true)
    expect(events).toEqual(['unhealthy', 'healthy'])
  })

  it('schedules the next check one interval after the start of the last, and stop() ends it', async () => {
    const { checker, timers, step } = setup([ok, { status: 200, durationMs: 400 }])
    await step()
    expect(timers.delays).toEqual([90])
    await step()
    expect(timers.delays).toEqual([90, 0])
    checker.stop()
    expect(timers.pending).toBe(0)
  })

  it('treats a probe that throws as a failed check', async () => {
    const timers = manualScheduler()
    const checker = new HealthChecker({
      url: new URL('http://127.0.0.1:1/'),
      intervalMs: 100,
      timeoutMs: 50,
      unhealthyAfter: 1,
      healthyAfter: 1,
      probe: async () => { throw new Error('boom') },
      scheduler: timers
    })
    const ev = await new Promise<CheckEvent>((resolve) => { checker.once('check', resolve); checker.start() })
    expect(ev).toMatchObject({ healthy: false, error: 'boom' })
    expect(checker.status).toBe('unhealthy')
    checker.stop()
  })
})
