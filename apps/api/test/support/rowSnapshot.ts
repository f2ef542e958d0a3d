import type { PrismaClient } from "@zigznote/database";

/**
 * Everything stored for one organization: its own row and, for every table with an
 * `organization_id` column (found in the catalog, so new tables are covered without editing
 * this), how many rows it has and a digest of their contents. Two equal snapshots mean the
 * organization's data neither gained, lost nor changed a row in between.
 */
export type RowSnapshot = Record<string, { rows: number; digest: string }>;

let tables: Promise<string[]> | undefined;

function organizationTables(db: PrismaClient): Promise<string[]> {
  tables ??= db.$queryRaw<{ table_name: string }[]>`
      SELECT c.table_name FROM information_schema.columns c
      JOIN information_schema.tables t USING (table_schema, table_name)
      WHERE c.table_schema = current_schema() AND c.column_name = 'organization_id'
        AND t.table_type = 'BASE TABLE'
      ORDER BY c.table_name`.then((rows) => rows.map((row) => row.table_name));
  return tables;
}

/** The organization's rows, table by table (see RowSnapshot). */
export async function organizationRowSnapshot(
  db: PrismaClient,
  organizationId: string,
): Promise<RowSnapshot> {
  const queries = [
    `SELECT 'organizations' AS name, count(*)::int AS rows,
            coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') AS digest
       FROM organizations t WHERE id = $1::uuid`,
    ...(await organizationTables(db)).map(
      (table) =>
        `SELECT '${table}' AS name, count(*)::int AS rows,
                coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') AS digest
           FROM "${table}" t WHERE organization_id = $1::uuid`,
    ),
  ];
  const rows = await db.$queryRawUnsafe<{ name: string; rows: number; digest: string }[]>(
    queries.join(" UNION ALL "),
    organizationId,
  );
  return Object.fromEntries(rows.map((row) => [row.name, { rows: row.rows, digest: row.digest }]));
}
