import { useId, type ReactNode } from "react";
import { useSearchParams } from "react-router-dom";

/**
 * The page's filters live in the URL query (a view can be shared or bookmarked); changing one
 * goes back to the first page.
 */
export function useQueryFilters<K extends string>(keys: readonly K[]) {
  const [params, setParams] = useSearchParams();
  const values = Object.fromEntries(keys.map((key) => [key, params.get(key) ?? ""])) as Record<
    K,
    string
  >;
  const cursor = params.get("cursor") ?? "";
  const setFilter = (key: K, value: string) => {
    const next = new URLSearchParams(params);
    if (value) next.set(key, value);
    else next.delete(key);
    next.delete("cursor");
    setParams(next);
  };
  const setCursor = (value: string | null) => {
    const next = new URLSearchParams(params);
    if (value) next.set("cursor", value);
    else next.delete("cursor");
    setParams(next);
  };
  return { values, cursor, setFilter, setCursor, queryKey: params.toString() };
}

export function SelectFilter({
  label,
  value,
  options,
  onChange,
}: {
  label: string;
  value: string;
  options: readonly { value: string; label: string }[];
  onChange: (value: string) => void;
}) {
  const id = useId();
  return (
    <div className="filter">
      <label htmlFor={id}>{label}</label>
      <select id={id} value={value} onChange={(event) => onChange(event.target.value)}>
        {options.map((option) => (
          <option key={option.value} value={option.value}>
            {option.label}
          </option>
        ))}
      </select>
    </div>
  );
}

/** A text filter applied on submit (Enter or the button), not on every key. */
export function SearchFilter({
  label,
  value,
  onSubmit,
  placeholder,
}: {
  label: string;
  value: string;
  onSubmit: (value: string) => void;
  placeholder?: string;
}) {
  const id = useId();
  return (
    <form
      className="filter filter-search"
      role="search"
      onSubmit={(event) => {
        event.preventDefault();
        const input = new FormData(event.currentTarget).get("q");
        onSubmit(typeof input === "string" ? input.trim() : "");
      }}
    >
      <label htmlFor={id}>{label}</label>
      <div className="search-row">
        <input
          id={id}
          name="q"
          type="search"
          defaultValue={value}
          key={value}
          placeholder={placeholder}
        />
        <button type="submit">Search</button>
      </div>
    </form>
  );
}

export function FilterBar({ children }: { children: ReactNode }) {
  return <div className="filters">{children}</div>;
}

/** Cursor pages: the first page, and the next one while the API says there is one. */
export function Pager({
  cursor,
  nextCursor,
  onPage,
}: {
  cursor: string;
  nextCursor: string | null | undefined;
  onPage: (cursor: string | null) => void;
}) {
  if (!cursor && !nextCursor) return null;
  return (
    <nav className="pager" aria-label="Pages">
      <button type="button" onClick={() => onPage(null)} disabled={!cursor}>
        First page
      </button>
      <button type="button" onClick={() => onPage(nextCursor ?? null)} disabled={!nextCursor}>
        Next page
      </button>
    </nav>
  );
}
