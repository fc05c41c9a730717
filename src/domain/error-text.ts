/** An error as one line of text (its name and message, or the thrown value as a string), for logs and outbox or journal entries. */
export function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
