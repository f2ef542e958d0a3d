import type pg from "pg";
import { QUERY_READ_TIMEOUT } from "./pgErrors";
import type { SqlStatement, SqlValue } from "./sql";

/**
 * Several statements sent to PostgreSQL in one round trip, each with its parameters: a transaction's
 * BEGIN with the claim that opens it, or the answer that closes it with its COMMIT
 * (`TransactionBracket`, sql.ts).
 *
 * pg sends a parameterized statement alone (Parse, Bind, Execute, Sync) and waits for its answer
 * before the next; several statements in one simple-protocol message take no parameters (their
 * values spliced into the text as literals, a 1 KB `bytea` as 2 KB of hex that the server parses
 * on every request). This is the extended protocol's own batching, through pg's `Submittable`
 * hook (the interface pg-cursor and pg-query-stream use): Bind and Execute per statement and one
 * Sync, so the statements run in order and an error skips the rest (the server discards what
 * follows until the Sync), as in one simple-protocol message. Each text is a named prepared
 * statement of its connection: parsed and analyzed once per connection, not per request; values
 * travel as parameters (bytes in binary), never as SQL text.
 *
 * A connection sends Close before Parse for a name it has not seen succeed (its first use, or
 * after a failed batch, where a Parse may or may not have happened, or the statement may have
 * been lost): closing a statement that does not exist is no error, so a name is always parsed
 * afresh rather than met twice. A name stands for one text in the whole process, so where several
 * connections share one server session (the embedded database) they re-parse the same statement.
 * Texts are the code's constants (a statement per text is kept on every connection): values go in
 * parameters, never in the text. Behind a pooler that moves a client between server connections
 * within its session (PgBouncer in transaction mode), named statements need the pooler's own
 * support for them (PgBouncer 1.21+, `max_prepared_statements`).
 */

/** The prepared statements' names, by text: one name per text in the process. */
const statementNames = new Map<string, string>();

function statementName(text: string): string {
  let name = statementNames.get(text);
  if (name === undefined) {
    name = `zigznote_batch_${statementNames.size + 1}`;
    statementNames.set(text, name);
  }
  return name;
}

/** The names each connection has prepared (a batch that succeeded parsed them). */
const preparedOn = new WeakMap<object, Set<string>>();

/** An array of text as a PostgreSQL array literal: each item quoted, `"` and `\` escaped. */
function arrayLiteral(items: readonly string[]): string {
  return `{${items.map((item) => `"${item.replace(/[\\"]/g, (c) => `\\${c}`)}"`).join(",")}}`;
}

/** A value as the wire carries it: bytes in binary, the rest as text (as pg writes them), or null. */
function parameterOf(value: SqlValue): Buffer | string | null {
  if (value === null) return null;
  if (value instanceof Uint8Array) {
    return Buffer.isBuffer(value)
      ? value
      : Buffer.from(value.buffer, value.byteOffset, value.length);
  }
  if (value instanceof Date) return value.toISOString();
  if (typeof value === "object") return arrayLiteral(value);
  return String(value);
}

/** The protocol messages of pg's Connection that a batch sends. */
interface BatchConnection {
  parse(message: { text: string; name: string }): void;
  bind(message: { statement: string; values: (Buffer | string | null)[] }): void;
  execute(): void;
  close(message: { type: "S"; name: string }): void;
  sync(): void;
  sendCopyFail(message: string): void;
  stream: { cork?: () => void; uncork?: () => void };
}

/** pg's Submittable: pg calls `submit` when the connection is free, then the handlers. */
class StatementBatch {
  private readonly statements: readonly SqlStatement[];
  /** The connection's prepared names, and the names this batch uses and those it parses. */
  private prepared?: Set<string>;
  private names: string[] = [];
  private parsing: string[] = [];
  private isDone = false;

  constructor(
    statements: readonly SqlStatement[],
    /** pg (and its instrumentation, which wraps it) reads and replaces this property. */
    public callback: (error: Error | null) => void,
  ) {
    this.statements = statements;
  }

  /** The statements, for pg's instrumentation (its span's name); joined only when read. */
  get text(): string {
    return this.statements.map((statement) => statement.text).join("; ");
  }

  submit(connection: BatchConnection): void {
    let prepared = preparedOn.get(connection);
    if (!prepared) preparedOn.set(connection, (prepared = new Set()));
    this.prepared = prepared;
    connection.stream.cork?.();
    try {
      for (const statement of this.statements) {
        const name = statementName(statement.text);
        this.names.push(name);
        if (!prepared.has(name)) {
          connection.close({ type: "S", name });
          connection.parse({ text: statement.text, name });
          this.parsing.push(name);
        }
        connection.bind({ statement: name, values: (statement.values ?? []).map(parameterOf) });
        connection.execute();
      }
      connection.sync();
    } finally {
      connection.stream.uncork?.();
    }
  }

  private finish(error: Error | null): void {
    if (this.isDone) return;
    this.isDone = true;
    // Parsed or not, a failed batch's names are parsed afresh next time (a Bind that met a
    // statement the session had lost, say, must not fail again).
    if (error === null) for (const name of this.parsing) this.prepared?.add(name);
    else for (const name of this.names) this.prepared?.delete(name);
    this.callback(error);
  }

  handleReadyForQuery(): void {
    this.finish(null);
  }

  handleError(error: Error): void {
    this.finish(error);
  }

  // Rows and command tags are not read: the statements are run for their effect (or error).
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleCommandComplete(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyData(): void {}
  handleCopyInResponse(connection: BatchConnection): void {
    connection.sendCopyFail("COPY is not supported in a statement batch");
  }
}

/**
 * Runs `statements` on `client` in one round trip, in order; rejects with the first error (the
 * statements after it do not run). A client whose answer never came (pg's query read timeout) is
 * ended, as the pool's client does for its own queries: it could not be used again.
 */
export function runStatementBatch(
  client: pg.PoolClient,
  statements: readonly SqlStatement[],
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const batch = new StatementBatch(statements, (error) => {
      if (error === null) {
        resolve();
        return;
      }
      if (error.message === QUERY_READ_TIMEOUT) void client.end();
      reject(error);
    });
    client.query(batch as unknown as pg.Submittable);
  });
}
