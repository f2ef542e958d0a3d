import { useId, useState, type FormEvent } from "react";
import type { ApiFailure } from "../api";
import { setSessionCookie } from "../session";

/**
 * Sign-in without Clerk: paste a session token (`pnpm -s dev:token --platform-admin` on a
 * development server); it becomes the `__session` cookie the API reads.
 */
export function DevSignIn({
  failure,
  isDevelopmentSignIn,
  onSignedIn,
}: {
  failure: ApiFailure | null;
  isDevelopmentSignIn: boolean;
  onSignedIn: () => void;
}) {
  const [token, setToken] = useState("");
  const tokenId = useId();
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const value = token.trim();
    if (!value) return;
    setSessionCookie(value);
    onSignedIn();
  };
  return (
    <main className="page narrow sign-in">
      <h1>Sign in to zigznote admin</h1>
      <p>
        You are signed out. The console is for zigznote&apos;s platform admins.
        {isDevelopmentSignIn ? (
          <>
            {" "}
            On this development server, make a token with{" "}
            <code>pnpm -s dev:token --platform-admin</code> and paste it here.
          </>
        ) : (
          <> Paste a session token this server accepts.</>
        )}
      </p>
      {failure ? (
        <div className="state state-error" role="alert">
          <p>
            The API refused the session: {failure.message} (<code>{failure.code}</code>
            {failure.requestId ? (
              <>
                , request id <code>{failure.requestId}</code>
              </>
            ) : null}
            )
          </p>
        </div>
      ) : null}
      <form onSubmit={submit}>
        <label htmlFor={tokenId}>Session token</label>
        <textarea
          id={tokenId}
          name="token"
          rows={4}
          required
          spellCheck={false}
          autoComplete="off"
          value={token}
          onChange={(event) => setToken(event.target.value)}
        />
        <button type="submit" className="primary" disabled={token.trim() === ""}>
          Sign in
        </button>
      </form>
    </main>
  );
}
