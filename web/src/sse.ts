// A spec-following Server-Sent Events parser (WHATWG HTML §9.2.6), fed with
// text chunks of any size. EventSource cannot send an Authorization header, so
// the dashboard reads SSE with fetch() and parses it here.

export interface SSEMessage {
  /** The last event ID at dispatch time (the `id:` of this message or an earlier one). */
  id: string;
  /** True when this message carried its own `id:` field. */
  hasId: boolean;
  event: string;
  data: string;
}

export class SSEParser {
  private buf = "";
  private data: string[] = [];
  private hasData = false;
  private eventType = "";
  private lastId: string;
  private sawId = false;
  /** Reconnection time requested by the server with `retry:` (ms), if any. */
  retryMs: number | undefined;
  /** The previous chunk ended with "\r": a "\n" at the start of the next one belongs to it. */
  private pendingCR = false;

  constructor(lastEventId = "") {
    this.lastId = lastEventId;
  }

  get lastEventId(): string {
    return this.lastId;
  }

  /** Feed a decoded text chunk; returns the messages completed by it. */
  feed(chunk: string): SSEMessage[] {
    const out: SSEMessage[] = [];
    let text = chunk;
    if (this.pendingCR) {
      this.pendingCR = false;
      if (text.startsWith("\n")) text = text.slice(1);
    }
    this.buf += text;
    let start = 0;
    const buf = this.buf;
    for (let i = 0; i < buf.length; i++) {
      const c = buf.charCodeAt(i);
      if (c === 10 /* \n */ || c === 13 /* \r */) {
        const line = buf.slice(start, i);
        if (c === 13) {
          if (i + 1 < buf.length) {
            if (buf.charCodeAt(i + 1) === 10) i++;
          } else {
            this.pendingCR = true;
          }
        }
        start = i + 1;
        const msg = this.line(line);
        if (msg) out.push(msg);
      }
    }
    this.buf = buf.slice(start);
    return out;
  }

  /** End of stream: an unterminated message is discarded (per spec). */
  end(): SSEMessage[] {
    this.buf = "";
    this.resetMessage();
    return [];
  }

  private resetMessage() {
    this.data = [];
    this.hasData = false;
    this.eventType = "";
    this.sawId = false;
  }

  private line(line: string): SSEMessage | null {
    if (line === "") return this.dispatch();
    if (line.charCodeAt(0) === 58 /* : */) return null; // comment / heartbeat
    const colon = line.indexOf(":");
    let field: string;
    let value: string;
    if (colon === -1) {
      field = line;
      value = "";
    } else {
      field = line.slice(0, colon);
      value = line.slice(colon + 1);
      if (value.charCodeAt(0) === 32) value = value.slice(1);
    }
    switch (field) {
      case "data":
        this.data.push(value);
        this.hasData = true;
        break;
      case "event":
        this.eventType = value;
        break;
      case "id":
        if (!value.includes("\0")) {
          this.lastId = value;
          this.sawId = true;
        }
        break;
      case "retry":
        if (/^\d+$/.test(value)) this.retryMs = parseInt(value, 10);
        break;
      default:
        break;
    }
    return null;
  }

  private dispatch(): SSEMessage | null {
    if (!this.hasData) {
      // An id-only or retry-only block updates state but dispatches nothing.
      this.resetMessage();
      return null;
    }
    const msg: SSEMessage = {
      id: this.lastId,
      hasId: this.sawId,
      event: this.eventType || "message",
      data: this.data.join("\n"),
    };
    this.resetMessage();
    return msg;
  }
}
