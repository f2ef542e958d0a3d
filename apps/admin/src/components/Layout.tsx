import { NavLink, Outlet } from "react-router-dom";
import { api, unwrap, useLoad } from "../api";

/** Who this session is (`GET /api/v1/me`): the operator's e-mail, else their Clerk id. */
function SignedInAs() {
  const me = useLoad(() => unwrap(api.GET("/api/v1/me")), "me");
  const user = me.data?.user;
  if (!user) return null;
  return (
    <span className="who" data-testid="signed-in-as">
      {user.email ?? user.clerkId}
      {me.data?.isPlatformAdmin ? <span className="who-role"> · platform admin</span> : null}
    </span>
  );
}

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
        <span className="signed-in">
          <SignedInAs />
          <button type="button" onClick={signOut}>
            Sign out
          </button>
        </span>
      </header>
      <main id="main" className="page" tabIndex={-1}>
        <Outlet />
      </main>
    </>
  );
}
