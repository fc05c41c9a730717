#!/usr/bin/env node
// The dualwrite command line: `dualwrite --help` lists the commands, exit codes and environment.
import { runCli } from './program.js';

// Only the exit code is set: `serve` keeps the process running after its command returns.
process.exitCode = await runCli(process.argv.slice(2));
