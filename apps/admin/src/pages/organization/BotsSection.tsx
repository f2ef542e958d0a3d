import { Empty } from "../../components/States";
import { formatDateTime, humanize } from "../../format";
import type { Detail } from "./types";

export function BotsSection({ bots }: { bots: Detail["recentBots"] }) {
  return (
    <section aria-labelledby="bots">
      <h2 id="bots">Recent bots</h2>
      {bots.length === 0 ? (
        <Empty>No bots.</Empty>
      ) : (
        <ul className="plain">
          {bots.map((bot) => (
            <li key={bot.id}>
              {formatDateTime(bot.createdAt)} — {humanize(bot.status)}{" "}
              <span className="muted">
                meeting <code>{bot.meetingId.slice(0, 8)}</code>
              </span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
