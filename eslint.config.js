import neostandard from 'neostandard'
import tseslint from 'typescript-eslint'

// Who may import whom. Data flows one way: config → ZooKeeper session →
// registry → balancer/cache → proxy; src/cli/ wires the parts and may import anything. Each
// folder lists what it must not import; `allowTypeImports` lets a layer name a type of another
// without depending on its code. Import circles are caught by test/unit/architecture.test.ts
// (eslint's own rules cannot see them).
const src = (folder) => `../${folder}/**`
const never = (group, message, extra = {}) => ({ group, message, ...extra })
const upward = ['cli', 'admin', 'proxy', 'replica', 'dev'].map(src)
const layers = {
  'src/zk/**': [
    never(['../**', '!../errors.js'], 'src/zk/ talks to ZooKeeper and nothing else of zkproxy (errors.ts aside).')
  ],
  'src/registry/**': [
    never([...upward, src('balancer'), src('cache')], 'src/registry/ builds on src/zk/ only; the layers above read it, not the other way round.'),
    never(['../config.js', '../config-*.js'], 'src/registry/ takes typed values, never the config module.')
  ],
  'src/balancer/**': [
    never(['../**', '!../routes.js'], 'src/balancer/ is pure logic over its own types (and the route syntax, src/routes.ts): no I/O, no other layer.'),
    never(['node:*'], 'src/balancer/ is pure logic: no I/O.')
  ],
  'src/cache/**': [
    never([...upward, src('zk'), src('registry'), src('balancer')], 'src/cache/ is pure: it knows HTTP semantics, not the proxy, ZooKeeper or the registry.')
  ],
  'src/proxy/**': [
    never([src('zk'), src('registry')], 'src/proxy/ reads memory only (snapshots from the router), never ZooKeeper or the registry.'),
    never([src('cli'), src('admin'), src('replica'), src('dev')], 'src/proxy/ is below the admin listener and the CLI.'),
    never(['../config.js', '../config-*.js'], 'src/proxy/ may name config types only; values come from the CLI.', { allowTypeImports: true })
  ],
  'src/admin/**': [
    never([src('zk')], 'src/admin/ reads the session through src/registry/session-view.ts, not src/zk/.'),
    never([src('cli'), src('replica'), src('dev')], 'src/admin/ is below the CLI.')
  ],
  'src/replica/**': [
    never([src('zk'), src('registry'), src('proxy'), src('cache'), src('admin'), src('cli'), src('dev')], 'src/replica/ serves files; src/cli/ wires its registration.')
  ],
  'src/dev/**': [
    never(['../**'], 'src/dev/ launches processes and knows no other layer.')
  ]
}
// The native client: one file wraps it (typed promises, error codes parsed once).
const zookeeperPackage = { name: 'zookeeper', message: 'only src/zk/native.ts imports the zookeeper package.' }

const restrict = (patterns) => ['error', { paths: [zookeeperPackage], patterns }]

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'test-results/**'] }),
  {
    files: ['**/*.ts'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname }
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    rules: {
      // Every background task (watch callbacks, re-arms, flush ticks) must end in a handled promise.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      // `void promise.then(ok, fail)` is how a handled background task is marked for
      // no-floating-promises; void as an expression stays forbidden.
      'no-void': ['error', { allowAsStatement: true }]
    }
  },
  {
    files: ['src/**/*.ts'],
    rules: { '@typescript-eslint/no-restricted-imports': restrict([]) }
  },
  ...Object.entries(layers).map(([files, patterns]) => ({
    files: [files],
    rules: { '@typescript-eslint/no-restricted-imports': restrict(patterns) }
  })),
  {
    files: ['src/zk/native.ts'],
    rules: { '@typescript-eslint/no-restricted-imports': ['error', { patterns: layers['src/zk/**'] }] }
  }
]
