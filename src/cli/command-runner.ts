/**
 * A command's work: resolves to its exit code (src/cli/exit-codes.ts) and throws to fail
 * (a CliError says how). Handlers take commander's action arguments: the command's
 * arguments, then its options.
 */
export type CommandHandler<Args extends unknown[]> = (...args: Args) => Promise<number>;

/** Turns a handler into a commander action that hands the exit code to the program (program.ts). */
export type Run = <Args extends unknown[]>(handler: CommandHandler<Args>) => (...args: Args) => Promise<void>;
