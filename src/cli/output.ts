/**
 * Where results go: stdout, as indented JSON for machines (--json) or as text for people.
 * Progress and errors go to stderr, so stdout stays parseable.
 */
export function printResult<T>(json: boolean | undefined, value: T, forPeople: (value: T) => string): void {
  process.stdout.write(`${json ? JSON.stringify(value, null, 2) : forPeople(value)}\n`);
}

/** A line on stderr: an explanation beside the result, or progress. */
export function printNote(line: string): void {
  process.stderr.write(`${line}\n`);
}
