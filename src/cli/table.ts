/** Renders rows as an aligned plain-text table for people; machines get --json instead. */
export function formatTable(headers: readonly string[], rows: readonly (readonly unknown[])[]): string {
  const cells = [headers, ...rows.map((row) => row.map((cell) => String(cell ?? '')))];
  const widths = headers.map((_, column) => Math.max(...cells.map((row) => [...(row[column] ?? '')].length)));
  const line = (row: readonly string[]) =>
    row
      .map((cell, column) => cell.padEnd(widths[column]!))
      .join('  ')
      .trimEnd();
  return [line(cells[0]!), widths.map((width) => '-'.repeat(width)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

/** Renders label/value pairs as aligned lines ("outbox   3 entries"), for one record's fields. */
export function formatFields(fields: readonly (readonly [string, unknown])[]): string {
  const width = Math.max(...fields.map(([label]) => [...label].length));
  return fields.map(([label, value]) => `${label.padEnd(width)}  ${String(value ?? '')}`.trimEnd()).join('\n');
}
