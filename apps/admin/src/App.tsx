import { ClerkProvider, SignIn, SignedIn, SignedOut, useClerk } from "@clerk/clerk-react";
import { useState, type ReactNode } from "react";
import { BrowserRouter, Route, Routes } from "react-router-dom";
import { api, type ApiFailure, unwrap, useLoad } from "./api";
import { Layout } from "./components/Layout";
import { ErrorState, Loading } from "./components/States";
import { AuditLogPage } from "./pages/AuditLog";
import { DevSignIn } from "./pages/DevSignIn";
import { JobRunsPage } from "./pages/JobRuns";
import { NotFoundPage } from "./pages/NotFound";
import { OrganizationPage } from "./pages/organization";
import { OrganizationsPage } from "./pages/Organizations";
import { OverviewPage } from "./pages/Overview";
import { ViolationsPage } from "./pages/Violations";
import { Refused } from "./pages/Refused";
import { clearSessionCookie } from "./session";
import type { ConsoleSettings } from "./settings";

/** Clerk's React SDK when this deployment has a publishable key, else the development form. */
export function App({ settings }: { settings: ConsoleSettings }) {
  if (settings.clerkPublishableKey) {
    return (
      <ClerkProvider publishableKey={settings.clerkPublishableKey} afterSignOutUrl="/admin/">
        <SignedOut>
          <main className="sign-in">
            <h1>zigznote admin</h1>
            <SignIn routing="hash" />
          </main>
        </SignedOut>
        <SignedIn>
          <ClerkSession />
        </SignedIn>
      </ClerkProvider>
    );
  }
  return <DevSession isDevelopmentSignIn={settings.isDevelopmentSignIn} />;
}

function ClerkSession() {
  const clerk = useClerk();
  return <AccessGate signOut={() => void clerk.signOut()} signIn={null} />;
}

function DevSession({ isDevelopmentSignIn }: { isDevelopmentSignIn: boolean }) {
  const [attempt, setAttempt] = useState(0);
  return (
    <AccessGate
      key={attempt}
      signOut={() => {
        clearSessionCookie();
        setAttempt((value) => value + 1);
      }}
      signIn={(failure) => (
        <DevSignIn
          failure={failure}
          isDevelopmentSignIn={isDevelopmentSignIn}
          onSignedIn={() => setAttempt((value) => value + 1)}
        />
      )}
    />
  );
}

/**
 * Asks the API whether this session may use the console (the cheapest admin read): 401 shows the
 * sign-in, 403 the refusal, anything else the error with its request id.
 */
function AccessGate({
  signOut,
  signIn,
}: {
  signOut: () => void;
  signIn: ((failure: ApiFailure | null) => ReactNode) | null;
}) {
  const probe = useLoad(() => unwrap(api.GET("/api/v1/admin/jobs")), "probe");
  if (probe.status === "loading") return <Loading label="Checking your session…" />;
  if (probe.status === "error") {
    const failure = probe.error;
    if (failure.status === 401 && signIn)
      return <>{signIn(failure.code === "MISSING_CREDENTIALS" ? null : failure)}</>;
    if (failure.status === 401 || failure.status === 403) {
      return <Refused failure={failure} signOut={signOut} />;
    }
    return (
      <main className="page">
        <ErrorState error={failure} onRetry={probe.reload} />
      </main>
    );
  }
  return (
    <BrowserRouter basename="/admin">
      <Routes>
        <Route element={<Layout signOut={signOut} />}>
          <Route index element={<OverviewPage />} />
          <Route path="violations" element={<ViolationsPage />} />
          <Route path="organizations" element={<OrganizationsPage />} />
          <Route path="organizations/:id" element={<OrganizationPage />} />
          <Route path="job-runs" element={<JobRunsPage />} />
          <Route path="audit-log" element={<AuditLogPage />} />
          <Route path="*" element={<NotFoundPage />} />
        </Route>
      </Routes>
    </BrowserRouter>
  );
}
