#!/usr/bin/env node
// The `zkproxy` command: parses flags/env into one frozen config per subcommand (src/config.ts),
// wires the parts, and owns exit codes (EXIT_CODES below, also shown by --help).
import { Command, CommanderError } from 'commander'
import { commands, type CommandName } from '../config.js'
import { createLogger } from './logger.js'
import { createContext, type CliContext } from './lifecycle.js'

const version = '0.1.0'

type Runner = (raw: Record<string, unknown>, ctx: CliContext) => Promise<void>

// Loaded on demand: `zkproxy status` need not load the proxy, nor `--help` anything.
const runners: Record<CommandName, () => Promise<Runner>> = {
  proxy: async () => (await import('./proxy-command.js')).run,
  replica: async () => (await import('./replica-command.js')).run,
  register: async () => (await import('./register-command.js')).run,
  dev: async () => (await import('./dev-command.js')).run,
  status: async () => (await import('./status-command.js')).run,
  purge: async () => (await import('./purge-command.js')).run
}

export const EXIT_CODES = `
Exit codes:
  0  done: help shown, or stopped cleanly by SIGTERM/SIGINT
  1  the shutdown failed, or a second signal cut it short
  2  bad usage or a start-up error, said in one line on stderr: unknown command or flag, a bad
     value (from a flag or its environment twin), a port in use, an unreachable --url, ZooKeeper
     refusing --zk-auth; also a bare \`zkproxy\` (the command list goes to stderr)
`

const STATUS_EXIT_CODES = `
Exit codes:
  0  at least one usable target is registered
  1  no usable target is registered (malformed znodes do not count)
  2  the question could not be asked: bad flag or value, ZooKeeper unreachable within
     --timeout-ms, or no permission (one line on stderr)
`

function oneLine (msg: string): string {
  return msg.replace(/^error:\s*/i, '').split('\n').map(s => s.trim()).filter(Boolean).join(' ')
}

// Commander writes its own error messages and error-time help to stderr; both are kept out of
// the way (main prints one line) and the help text is kept for when it is the answer.
const quiet = { writeErr: (text: string) => { helpOnError += text }, outputError: () => {} }
let helpOnError = ''

function buildProgram (onAction: (name: CommandName) => void): Command {
  const program = new Command('zkproxy')
    .description('A reverse proxy whose backends register themselves in Apache ZooKeeper.\nEvery flag also reads an environment variable, named in each command\'s help.')
    .usage('<command> [flags]')
    .version(version)
    .helpCommand('help [command]', 'list the commands, or show the flags of one')
    .addHelpText('after', EXIT_CODES)
    // One line per command in the list: the name alone, without "[options]".
    .configureHelp({ subcommandTerm: (cmd) => cmd.name() === 'help' ? 'help [command]' : cmd.name(), helpWidth: 100 })
    .exitOverride()
    .configureOutput(quiet)

  for (const [key, spec] of Object.entries(commands)) {
    const name = key as CommandName
    const cmd = program.command(name).description(spec.summary).exitOverride().configureOutput(quiet)
    cmd.addHelpText('after', name === 'status' ? STATUS_EXIT_CODES : EXIT_CODES)
    spec.configure(cmd)
    cmd.action(async (raw: Record<string, unknown>) => {
      onAction(name)
      // Every flag judged before anything starts or logs (a bad one is one line, exit 2).
      const config = spec.fromParsed(raw)
      const pretty = name === 'dev' || ('logPretty' in config && config.logPretty)
      const logger = createLogger({ level: config.logLevel, pretty, cmd: name })
      const run = await runners[name]()
      await run(raw, createContext(logger, name))
    })
  }
  return program
}

async function main (argv: string[]): Promise<void> {
  // Named in every error line; known before parsing so that a bad flag's line names it too.
  let current = argv[2] !== undefined && Object.hasOwn(commands, argv[2]) ? argv[2] : ''
  const program = buildProgram((name) => { current = name })
  const fail = (message: string): never => {
    process.stderr.write(`zkproxy${current === '' ? '' : ` ${current}`}: ${message}\n`)
    process.exit(2)
  }

  // A bare `zkproxy` is a usage error: the list of commands, on stderr, exit 2 (git does the
  // same with exit 1; 2 is what every other usage error here exits with).
  if (argv.length <= 2) {
    process.stderr.write(`${program.helpInformation()}${EXIT_CODES}`)
    process.exit(2)
  }
  const asked = argv[3]
  if (argv[2] === 'help' && asked !== undefined && !Object.hasOwn(commands, asked)) fail(`unknown command '${asked}' (\`zkproxy help\` lists the commands)`)

  try {
    await program.parseAsync(argv)
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || (err.code === 'commander.help' && err.exitCode === 0)) process.exit(0)
      // Help shown because the command line was incomplete: it is the answer, on stderr, exit 2.
      if (err.code === 'commander.help') {
        process.stderr.write(helpOnError)
        process.exit(2)
      }
      const hint = err.code === 'commander.unknownCommand' ? ' (`zkproxy help` lists the commands)' : ''
      fail(`${oneLine(err.message)}${hint}`)
    }
    const e = err as { code?: string, message?: string }
    fail(`${oneLine(e.message ?? String(err))}${e.code === undefined ? '' : ` (${e.code})`}`)
  }
}

await main(process.argv)
