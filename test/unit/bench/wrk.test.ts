// wrk's report parsed into figures, and the Lua scripts the bench hands it.
import { describe, expect, it } from 'vitest'
import { paceScript, parseWrk, postScript } from '../../../bench/wrk.js'

// wrk 4.1 with --latency (format from its src/wrk.c).
const REPORT = `Running 2s test @ http://127.0.0.1:40151/bench
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.94ms    1.10ms  41.20ms   90.12%
    Req/Sec    17.30k     1.02k   18.90k    75.00%
  Latency Distribution
     50%  850.00us
     75%    3.10ms
     90%    4.02ms
     99%    1.20s
  34451 requests in 2.00s, 40.90MB read
  Socket errors: connect 0, read 3, write 1, timeout 2
  Non-2xx or 3xx responses: 7
Requests/sec:  17219.43
Transfer/sec:     20.44MB
`

describe('parseWrk', () => {
  it('reads requests/s, latency percentiles in ms whatever the unit, requests and errors', () => {
    expect(parseWrk(REPORT)).toEqual({ rps: 17219.43, p50: 0.85, p99: 1200, requests: 34451, errors: 7 + 3 + 1 + 2 })
  })

  it('counts no errors when wrk reports none', () => {
    const clean = REPORT.replace(/ {2}Socket errors.*\n/, '').replace(/ {2}Non-2xx.*\n/, '')
    expect(parseWrk(clean).errors).toBe(0)
  })

  it('gives NaN, not a number it did not see, for missing figures', () => {
    const r = parseWrk('unable to connect to 127.0.0.1:1 Connection refused\n')
    expect(r.rps).toBeNaN()
    expect(r.p50).toBeNaN()
    expect(r.p99).toBeNaN()
    expect(r.requests).toBe(0)
  })
})

describe('scripts', () => {
  it('posts a body of the given size', () => {
    const lua = postScript(1024)
    expect(lua).toContain('wrk.method = "POST"')
    expect(lua).toContain('wrk.body = string.rep("x", 1024)')
  })

  it('paces each connection', () => {
    expect(paceScript(10)).toBe('function delay() return 10 end\n')
  })
})
