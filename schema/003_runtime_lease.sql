-- dualwrite 003: the lease one runtime process holds on a database (src/postgres/runtime-lease.ts).
-- Each process keeps its own in-memory stores, so two processes mirroring into one database
-- would each hold half the writes; the second one is refused at start.
CREATE TABLE dualwrite_runtime_lease (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    acquired_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
