import type { ReactNode } from "react";
import type { LoadState } from "../api";
import { Pager } from "./Filters";
import { Empty, ErrorState, Loading } from "./States";

/** A column's header; `className: "num"` right-aligns a number column. */
export interface Column {
  label: ReactNode;
  className?: string;
}

/** A header for a column of row buttons: read by screen readers, not shown. */
export const ROW_ACTIONS_COLUMN: Column = {
  label: <span className="visually-hidden">Actions</span>,
};

/** A table that scrolls sideways inside its box on a narrow screen; `children` are its rows. */
export function Table({
  columns,
  caption,
  className,
  testId,
  children,
}: {
  columns: readonly Column[];
  /** Names the table for screen readers only. */
  caption?: string;
  className?: string;
  testId?: string;
  children: ReactNode;
}) {
  return (
    <div className="table-wrap">
      <table className={className} data-testid={testId}>
        {caption ? <caption className="visually-hidden">{caption}</caption> : null}
        <thead>
          <tr>
            {columns.map((column, index) => (
              <th key={index} scope="col" className={column.className}>
                {column.label}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}

interface Page<Row> {
  data: Row[];
  nextCursor?: string | null;
}

/**
 * One page of a list as loaded: its error (with a retry), a loading line, the empty message, or
 * the rows and the pager. Rows already shown stay while the next page loads.
 */
export function PagedTable<Row>({
  list,
  cursor,
  onPage,
  empty,
  renderRow,
  ...table
}: {
  list: LoadState<Page<Row>> & { reload: () => void };
  cursor: string;
  onPage: (cursor: string | null) => void;
  /** What the list says when no row matches. */
  empty: ReactNode;
  renderRow: (row: Row) => ReactNode;
  columns: readonly Column[];
  caption?: string;
  className?: string;
}) {
  return (
    <>
      {list.status === "error" ? <ErrorState error={list.error} onRetry={list.reload} /> : null}
      {list.status === "loading" ? <Loading /> : null}
      {list.data && list.status !== "error" ? (
        list.data.data.length === 0 ? (
          <Empty>{empty}</Empty>
        ) : (
          <>
            <Table {...table}>{list.data.data.map(renderRow)}</Table>
            <Pager cursor={cursor} nextCursor={list.data.nextCursor} onPage={onPage} />
          </>
        )
      ) : null}
    </>
  );
}
