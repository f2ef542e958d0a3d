import { useEffect, useId, useRef, useState, type FormEvent, type ReactNode } from "react";
import { ApiFailure, isConflict } from "../api";
import { FailureCodes } from "./States";

const FOCUSABLE =
  'a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

export interface ActionDialogProps {
  title: string;
  /** What the action does, in a sentence the operator confirms. */
  description: ReactNode;
  confirmLabel: string;
  /** Extra inputs (a date, a number of days) rendered above the reason. */
  children?: ReactNode;
  /** Runs the action with the reason typed; throws ApiFailure on refusal. */
  onConfirm: (reason: string) => Promise<void>;
  /** After a 409: the page reloads the target so the operator sees what changed. */
  onConflict: () => void;
  onClose: () => void;
}

/**
 * A modal confirm dialog with a required reason (written to the audit log). Native `<dialog>`
 * (the page behind is inert), Tab and Shift+Tab cycle inside it, Escape closes it, and focus
 * goes back to the button that opened it.
 */
export function ActionDialog(props: ActionDialogProps) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const reasonId = useId();
  const [reason, setReason] = useState("");
  const [isBusy, setBusy] = useState(false);
  const [failure, setFailure] = useState<ApiFailure | null>(null);
  const [isConflicted, setConflicted] = useState(false);
  const { onClose } = props;

  useEffect(() => {
    const dialog = ref.current;
    const opener = document.activeElement as HTMLElement | null;
    // Opening focuses the dialog's first field (the action's own input, else the reason).
    dialog?.showModal();
    return () => {
      dialog?.close();
      opener?.focus();
    };
  }, []);

  const onKeyDown = (event: React.KeyboardEvent<HTMLDialogElement>) => {
    if (event.key !== "Tab" || !ref.current) return;
    const items = Array.from(ref.current.querySelectorAll<HTMLElement>(FOCUSABLE));
    const first = items[0];
    const last = items[items.length - 1];
    if (!first || !last) return;
    if (event.shiftKey && document.activeElement === first) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && document.activeElement === last) {
      event.preventDefault();
      first.focus();
    }
  };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (reason.trim() === "") return;
    setBusy(true);
    setFailure(null);
    try {
      await props.onConfirm(reason.trim());
      onClose();
    } catch (error) {
      const apiFailure =
        error instanceof ApiFailure
          ? error
          : new ApiFailure(0, "CLIENT_ERROR", String(error), null);
      setFailure(apiFailure);
      setConflicted(isConflict(apiFailure));
      if (isConflict(apiFailure)) props.onConflict();
    } finally {
      setBusy(false);
    }
  };

  return (
    <dialog
      ref={ref}
      className="dialog"
      aria-labelledby={titleId}
      onKeyDown={onKeyDown}
      onCancel={(event) => {
        event.preventDefault();
        onClose();
      }}
    >
      <form onSubmit={(event) => void submit(event)}>
        <h2 id={titleId}>{props.title}</h2>
        <div className="dialog-description">{props.description}</div>
        {props.children}
        <label htmlFor={reasonId}>Reason (kept in the audit log)</label>
        <textarea
          id={reasonId}
          name="reason"
          required
          rows={3}
          value={reason}
          onChange={(event) => setReason(event.target.value)}
        />
        {failure ? (
          <div className="state state-error" role="alert">
            {isConflicted ? (
              <p>
                <strong>Conflict ({failure.status}):</strong> someone changed this while you were
                looking at it ({failure.message}). The page now shows the current state; check it,
                then confirm again if the action is still right.
              </p>
            ) : (
              <p>
                <strong>{failure.status ? `Error ${failure.status}` : "Error"}</strong>{" "}
                {failure.message}
              </p>
            )}
            <FailureCodes failure={failure} />
          </div>
        ) : null}
        <div className="dialog-buttons">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={isBusy || reason.trim() === ""}>
            {isBusy ? "Working…" : props.confirmLabel}
          </button>
        </div>
      </form>
    </dialog>
  );
}
