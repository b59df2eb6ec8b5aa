#!/usr/bin/env node
// The `zkproxy` command: parses flags/env into one frozen config per subcommand (src/config.ts),
// wires the parts, and owns exit codes: 2 for bad flags/values or a start-up error that names
// the problem (port in use, unreachable --url), 1 for a failed shutdown, 0 otherwise.
import { CommanderError } from 'commander'
import { Command, commandOptions, type CommonConfig, type LogLevel } from '../config.js'
import { createLogger } from './logger.js'
import { createContext, type CliContext } from './lifecycle.js'

const version = '0.1.0'

type Runner = (raw: Record<string, unknown>, ctx: CliContext) => Promise<void>

const commands: Record<keyof typeof commandOptions, { description: string, load: () => Promise<Runner> }> = {
  proxy: { description: 'run a proxy: route to the least-used live target registered in ZooKeeper', load: async () => (await import('./proxy-command.js')).run },
  replica: { description: 'serve a static folder and register it as a target', load: async () => (await import('./replica-command.js')).run },
  register: { description: 'register an already-running backend (any language) as a target', load: async () => (await import('./register-command.js')).run },
  dev: { description: 'local stack: ZooKeeper + proxy + replicas in one command', load: async () => (await import('./dev-command.js')).run },
  status: { description: 'show targets, counts and proxies registered in ZooKeeper', load: async () => (await import('./status-command.js')).run },
  purge: { description: 'drop cached responses on every proxy of the fleet (all, or by --host / --prefix)', load: async () => (await import('./purge-command.js')).run }
}

function oneLine (msg: string): string {
  return msg.replace(/^error:\s*/i, '').split('\n').map(s => s.trim()).filter(Boolean).join(' ')
}

async function main (argv: string[]): Promise<void> {
  const program = new Command('zkproxy')
    .description('A reverse proxy whose backends register themselves in Apache ZooKeeper')
    .version(version)
    .exitOverride()
    .showHelpAfterError(false)
    // Commander prints its own error text; we print one line ourselves (below).
    .configureOutput({ writeErr: () => {} })

  let current = ''
  for (const [name, spec] of Object.entries(commands)) {
    const cmd = program.command(name).description(spec.description).exitOverride().configureOutput({ writeErr: () => {} })
    commandOptions[name as keyof typeof commandOptions](cmd)
    cmd.action(async (raw: Record<string, unknown>) => {
      current = name
      const common = raw as Partial<CommonConfig> & { logLevel?: LogLevel, logPretty?: boolean }
      const logger = createLogger({ level: common.logLevel ?? 'info', pretty: common.logPretty === true || name === 'dev', cmd: name })
      const run = await spec.load()
      await run(raw, createContext(logger, name))
    })
  }

  try {
    await program.parseAsync(argv)
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') process.exit(0)
      process.stderr.write(`zkproxy${current === '' ? '' : ` ${current}`}: ${oneLine(err.message)}\n`)
      process.exit(2)
    }
    const e = err as { code?: string, message?: string }
    process.stderr.write(`zkproxy${current === '' ? '' : ` ${current}`}: ${oneLine(e.message ?? String(err))}${e.code === undefined ? '' : ` (${e.code})`}\n`)
    process.exit(2)
  }
}

await main(process.argv)
