// The bench's settings: defaults, checked values, a clear error for anything misspelt, and the
// command line printed at the top of a report.
import { describe, expect, it } from 'vitest'
import { commandLine, KnobError, parseKnobs } from '../../../bench/knobs.js'

const CASES = ['direct', 'nginx', 'zkproxy', 'zk-post', 'zk-log']

describe('parseKnobs', () => {
  it('has the documented defaults', () => {
    expect(parseKnobs({ PATH: '/usr/bin' }, [], CASES)).toEqual({
      durationS: 5, rounds: 3, connections: 50, cases: undefined, pairBlocks: 6, pairS: 2, proxyNodeFlags: [], jsonPath: undefined
    })
  })

  it('reads every knob', () => {
    const env = {
      BENCH_DURATION_S: '2',
      BENCH_ROUNDS: '1',
      BENCH_CONNECTIONS: '20',
      BENCH_CASES: 'zkproxy, zk-post,zk-log',
      BENCH_PAIR_BLOCKS: '0',
      BENCH_PAIR_S: '1',
      BENCH_PROXY_NODE_FLAGS: '--cpu-prof  --cpu-prof-dir=/tmp/p',
      BENCH_JSON: '/tmp/out.json'
    }
    expect(parseKnobs(env, [], CASES)).toEqual({
      durationS: 2, rounds: 1, connections: 20, cases: ['zkproxy', 'zk-post', 'zk-log'], pairBlocks: 0, pairS: 1, proxyNodeFlags: ['--cpu-prof', '--cpu-prof-dir=/tmp/p'], jsonPath: '/tmp/out.json'
    })
  })

  it('takes --json PATH, over BENCH_JSON', () => {
    expect(parseKnobs({}, ['--json', 'a.json'], CASES).jsonPath).toBe('a.json')
    expect(parseKnobs({ BENCH_JSON: 'b.json' }, ['--json=a.json'], CASES).jsonPath).toBe('a.json')
  })

  it.each([
    [{ BENCH_ROUNDS: '0' }, 'BENCH_ROUNDS=0: expected a whole number >= 1'],
    [{ BENCH_DURATION_S: '1.5' }, 'BENCH_DURATION_S=1.5: expected a whole number >= 1'],
    [{ BENCH_CONNECTIONS: 'many' }, 'BENCH_CONNECTIONS=many: expected a whole number >= 1'],
    [{ BENCH_PAIR_BLOCKS: '-1' }, 'BENCH_PAIR_BLOCKS=-1: expected a whole number >= 0'],
    [{ BENCH_CASES: 'zkproxy,zk-hits' }, 'BENCH_CASES: unknown case zk-hits; cases: direct, nginx, zkproxy, zk-post, zk-log'],
    [{ BENCH_SECONDS: '2' }, 'unknown setting BENCH_SECONDS (did you mean BENCH_DURATION_S?)'],
    [{ BENCH_WORKERS: '2' }, 'unknown setting BENCH_WORKERS; known: BENCH_DURATION_S,']
  ])('rejects %o', (env, message) => {
    expect(() => parseKnobs(env, [], CASES)).toThrow(KnobError)
    expect(() => parseKnobs(env, [], CASES)).toThrow(message)
  })

  it('rejects an unknown flag, a positional argument and --json without a path', () => {
    expect(() => parseKnobs({}, ['--jsn', 'x'], CASES)).toThrow(/Unknown option '--jsn'.*usage: node dist\/bench\/run\.js \[--json PATH\]/)
    expect(() => parseKnobs({}, ['x'], CASES)).toThrow(KnobError)
    expect(() => parseKnobs({}, ['--json'], CASES)).toThrow(KnobError)
    expect(() => parseKnobs({}, ['--json='], CASES)).toThrow('--json needs a file path')
  })
})

describe('commandLine', () => {
  it('lists the BENCH_* settings in order, then the script and its flags, quoted for a shell', () => {
    const env = { HOME: '/root', BENCH_ROUNDS: '1', BENCH_CASES: 'zkproxy,zk-post', BENCH_PROXY_NODE_FLAGS: "--cpu-prof --title=it's" }
    expect(commandLine(env, 'dist/bench/run.js', ['--json', '/tmp/a b.json']))
      .toBe("BENCH_CASES=zkproxy,zk-post BENCH_PROXY_NODE_FLAGS='--cpu-prof --title=it'\\''s' BENCH_ROUNDS=1 node dist/bench/run.js --json '/tmp/a b.json'")
  })
})
