/** Where a connection string points, split into the parts libpq's tools take as separate arguments. */
export interface ConnectionTarget {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  /** Never printed; handed to child processes only through PGPASSWORD. */
  readonly password?: string;
}

/** Parses postgres://user:password@host:port/database with libpq's defaults (localhost, 5432, database named after the user). */
export function connectionTarget(connectionString: string): ConnectionTarget {
  const url = new URL(connectionString);
  const user = decodeURIComponent(url.username) || url.searchParams.get('user') || 'postgres';
  const password = decodeURIComponent(url.password) || url.searchParams.get('password') || undefined;
  return {
    // An IPv6 host comes back in brackets, which libpq's -h does not take.
    host: url.hostname.replace(/^\[(.*)\]$/, '$1') || url.searchParams.get('host') || 'localhost',
    port: Number(url.port || 5432),
    database: decodeURIComponent(url.pathname.replace(/^\//, '')) || user,
    user,
    ...(password === undefined ? {} : { password }),
  };
}

/** A PostgreSQL identifier quoted for SQL ("my db" -> "\"my db\""). */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
