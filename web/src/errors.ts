// Turn API errors into messages a person understands: what happened, and what to do.
import { ApiError } from "./api";

export type ErrorContext =
  | "launch"
  | "session"
  | "sessions"
  | "chat"
  | "interrupt"
  | "configs"
  | "validate"
  | "save"
  | "files"
  | "preview"
  | "upload"
  | "download"
  | "events";

export interface HumanError {
  title: string;
  /** What to do about it. */
  hint: string;
  /** The server's own words, when it said something. */
  detail?: string;
  status: number;
  fields?: { field: string; message: string }[];
}

export function humanize(err: unknown, ctx: ErrorContext): HumanError {
  if (!(err instanceof ApiError)) {
    const msg = err instanceof Error ? err.message : String(err);
    return { title: "Something went wrong", hint: "Try again; if it keeps happening, reload the page.", detail: msg, status: -1 };
  }
  const detail = err.detail && err.detail !== err.code ? err.detail : undefined;
  const base = { detail, status: err.status, fields: err.errors.length ? err.errors : undefined };
  switch (err.status) {
    case 0:
      return {
        ...base,
        title: "Can't reach the AgCluster API",
        hint: `The server at ${location.origin} did not answer. Check that the API is running (agcluster api, or docker compose up) and your network, then try again.`,
        detail: undefined,
      };
    case 401:
      if (ctx === "save" || ctx === "configs")
        return {
          ...base,
          title: "Operator token needed",
          hint: "Saving or deleting a custom configuration needs the platform operator's token (printed by agcluster up, or AGC_OPERATOR_TOKEN). Enter it in the builder's Operator token field and try again.",
        };
      return {
        ...base,
        title: "No API key",
        hint: "Enter your Anthropic API key on the Launch page. It stays in this browser and is only sent to this AgCluster server.",
      };
    case 403:
      return {
        ...base,
        title: "Wrong API key for this session",
        hint: "This session was launched with a different Anthropic API key. Enter the key you launched it with on the Launch page, or launch a new session.",
      };
    case 404:
      if (ctx === "launch")
        return { ...base, title: "Unknown configuration", hint: "That configuration no longer exists. Reload the list and pick another one." };
      if (ctx === "preview" || ctx === "download")
        return { ...base, title: "File not found", hint: "It may have been moved or deleted by the agent. Refresh the file tree." };
      return {
        ...base,
        title: "Session not found",
        hint: "It may have been stopped and cleaned up, or it belongs to another key. Open the Sessions page or launch a new session.",
      };
    case 409:
      if (ctx === "save")
        return { ...base, title: "That id is taken", hint: "A preset already uses this id. Choose a different id for your custom configuration." };
      if (ctx === "chat")
        return { ...base, title: "The agent is still busy", hint: "Wait for the current turn to finish, or press Stop to interrupt it, then send again." };
      return { ...base, title: "Conflict", hint: "The request clashes with the current state. Refresh and try again." };
    case 400:
      if (ctx === "launch")
        return { ...base, title: "MCP credentials were rejected", hint: "Check the credential names and values you entered for the MCP servers." };
      return { ...base, title: "Bad request", hint: "The server refused the request as sent." };
    case 413:
      return { ...base, title: "File too large", hint: "The server refused the upload because it is over the size limit. Upload a smaller file." };
    case 422:
      return {
        ...base,
        title: ctx === "launch" || ctx === "save" || ctx === "validate" ? "The configuration is invalid" : "Invalid request",
        hint: "Fix the fields listed below and try again.",
      };
    case 502:
      return {
        ...base,
        title: ctx === "launch" ? "The agent container failed to start" : "A worker failed to answer",
        hint: "The worker could not start or reach the agent's container. Check the worker logs (the detail below says why) and try again.",
      };
    case 429: {
      const wait = err.retryAfter ? ` Try again in ${err.retryAfter} s.` : "";
      const limit = (err.body as { limit?: string } | null)?.limit;
      const title =
        limit === "launch_rate"
          ? "Too many launches"
          : limit === "max_streams_per_key"
            ? "Too many open streams"
            : "Too many sessions";
      return {
        ...base,
        title,
        hint:
          limit === "launch_rate"
            ? `This platform limits how often one API key may launch.${wait}`
            : limit === "max_streams_per_key"
              ? `This API key has too many live views open. Close other tabs showing sessions.${wait}`
              : `This platform limits how many sessions may run at once. Stop a session you no longer need on the Sessions page.${wait}`,
      };
    }
    case 503:
      if ((err.body as { reason?: string } | null)?.reason === "no_capacity")
        return {
          ...base,
          title: "Every worker is full",
          hint: `All workers run as many sessions as they may.${err.retryAfter ? ` Try again in ${err.retryAfter} s,` : " Try again later,"} stop a session you no longer need, or add a worker.`,
        };
      return {
        ...base,
        title: "No worker is running",
        hint: "Nothing can run the agent's container right now. Start a worker (agcluster worker, or docker compose up worker) and try again.",
      };
    case 504:
      return {
        ...base,
        title: ctx === "launch" ? "Launching timed out" : "The worker took too long",
        hint: "The agent's container did not become ready in time. The machine may be busy; try again in a moment, or check the worker logs.",
      };
    default:
      if (err.status >= 500)
        return { ...base, title: `Server error (${err.status})`, hint: "The API hit an unexpected problem. Try again; check the API logs if it persists." };
      return { ...base, title: `Request failed (${err.status})`, hint: "Try again." };
  }
}
