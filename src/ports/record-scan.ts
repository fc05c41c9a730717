import type { RecordPort } from './record-port.js';

/** Every record of `entity` in key order, fetched `pageSize` at a time. */
export async function* scanAll<Records extends object, E extends keyof Records & string>(
  port: RecordPort<Records>,
  entity: E,
  pageSize = 1000,
): AsyncGenerator<Records[E][]> {
  let after: readonly string[] | undefined;
  for (;;) {
    const page = await port.scanRecords(entity, { after, limit: pageSize });
    if (page.length === 0) return;
    yield page;
    if (page.length < pageSize) return;
    after = port.keyOf(entity, page[page.length - 1]!);
  }
}

/** Reads a whole entity into memory; for small data and tests. */
export async function readAll<Records extends object, E extends keyof Records & string>(
  port: RecordPort<Records>,
  entity: E,
): Promise<Records[E][]> {
  const records: Records[E][] = [];
  for await (const page of scanAll(port, entity)) records.push(...page);
  return records;
}
