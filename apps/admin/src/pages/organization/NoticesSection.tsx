import { Empty } from "../../components/States";
import { formatDateTime, humanize } from "../../format";
import type { Notice } from "./types";

export function NoticesSection({
  notices,
  onResend,
}: {
  notices: Notice[];
  onResend: (notice: Notice) => void;
}) {
  return (
    <section aria-labelledby="notices">
      <h2 id="notices">Notices</h2>
      {notices.length === 0 ? (
        <Empty>No notices sent to this organization.</Empty>
      ) : (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Type</th>
                <th scope="col">Status</th>
                <th scope="col">To</th>
                <th scope="col">Created</th>
                <th scope="col">Sent</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {notices.map((notice) => (
                <tr key={notice.id}>
                  <td>{humanize(notice.type)}</td>
                  <td>
                    <span className={`badge badge-${notice.status}`}>{notice.status}</span>
                    {notice.lastError ? <span className="muted"> {notice.lastError}</span> : null}
                  </td>
                  <td>{notice.recipientEmail ?? "admins"}</td>
                  <td>{formatDateTime(notice.createdAt)}</td>
                  <td>{formatDateTime(notice.sentAt)}</td>
                  <td>
                    <button type="button" onClick={() => onResend(notice)}>
                      Resend…
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
