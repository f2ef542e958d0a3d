import type { ApiFailure } from "../api";
import { FailureCodes } from "../components/States";

/** A session the API knows but will not let in: an organization's admin is not a platform admin. */
export function Refused({ failure, signOut }: { failure: ApiFailure; signOut: () => void }) {
  return (
    <main className="page narrow">
      <h1>Not allowed</h1>
      <div className="state state-error" role="alert">
        <p>
          <strong>Access refused.</strong> The admin console is for zigznote&apos;s platform admins
          only; this session is not one.
        </p>
        <p>{failure.message}</p>
        <FailureCodes failure={failure} />
      </div>
      <button type="button" onClick={signOut}>
        Sign out and use another account
      </button>
    </main>
  );
}
