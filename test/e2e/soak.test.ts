// The chaos soak as CI runs it: one minute of faults under load (`npm run soak -- --seconds 60
// --json`, the built script), which must end with exit code 0 and a report whose invariants hold.
// Every fault kind comes once in each shuffled round, so one minute sees each of them.
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { spawnTracked, stopAllTracked } from '../support/processes.js'
import { ms } from '../support/until.js'

const soakScript = fileURLToPath(new URL('../../dist/scripts/soak.js', import.meta.url))

afterEach(async () => { await stopAllTracked() })

describe('npm run soak', () => {
  it('60 s of faults under load: exit 0, no error, counts exact, nothing left behind', async () => {
    const proc = spawnTracked(process.execPath, [soakScript, '--seconds', '60', '--json'], { name: 'soak' })
    const timer = setTimeout(() => { proc.signal('SIGTERM') }, ms(240_000))
    const exit = await proc.exited.finally(() => { clearTimeout(timer) })
    const lines = proc.output().trim().split('\n')
    const report = JSON.parse(lines.at(-1) ?? '{}') as Record<string, unknown>
    // On failure the report says why (`error`, `mismatches`, `failures`); the output tail shows the run.
    expect({ exit: exit.code, report }, proc.tail(30)).toMatchObject({ exit: 0, report: { seconds: 60, errors: 0, countsExact: true, leftoverZnodes: [], processesLeft: 0, resourcesBack: true, ok: true } })
    expect(report['requests']).toBeGreaterThan(1000)
    const faults = report['faults'] as Record<string, number>
    for (const kind of ['replica-kill', 'replica-term', 'replica-restart', 'zk-leader-kill', 'zk-pause', 'proxy-expiry', 'replica-expiry']) expect(faults[kind], kind).toBeGreaterThanOrEqual(1)
  }, 300_000)
})
