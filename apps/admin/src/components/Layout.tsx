import { NavLink, Outlet } from "react-router-dom";

const LINKS = [
  { to: "/", label: "Overview", end: true },
  { to: "/violations", label: "Violations", end: false },
  { to: "/organizations", label: "Organizations", end: false },
  { to: "/job-runs", label: "Job runs", end: false },
  { to: "/audit-log", label: "Audit log", end: false },
];

export function Layout({ signOut }: { signOut: () => void }) {
  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="top">
        <span className="brand">zigznote admin</span>
        <nav aria-label="Console">
          <ul>
            {LINKS.map((link) => (
              <li key={link.to}>
                <NavLink to={link.to} end={link.end}>
                  {link.label}
                </NavLink>
              </li>
            ))}
          </ul>
        </nav>
        <button type="button" className="sign-out" onClick={signOut}>
          Sign out
        </button>
      </header>
      <main id="main" className="page" tabIndex={-1}>
        <Outlet />
      </main>
    </>
  );
}
