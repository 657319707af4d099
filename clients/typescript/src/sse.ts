/**
 * A small parser of Server-Sent Events (the `text/event-stream` format of the HTML
 * standard), fed text as it arrives, in pieces cut anywhere.
 *
 * It keeps to the standard's rules: lines end with CRLF, LF or CR (a CRLF may be cut
 * between two pieces); a line starting with `:` is a comment; `data` lines of one event
 * are joined with newlines; an event is dispatched at a blank line, only if it has data;
 * one space after the colon is dropped; an `id` with a NUL is ignored; a BOM at the start
 * is skipped. An event's `id` is the one its own lines gave, or `undefined`: Leasehold's
 * `trimmed` marker has none.
 *
 * @module
 */

/** One dispatched event. */
export interface SseMessage {
  /** The `event` field (`"message"` when none was given). */
  event: string;
  /** The `data` lines, joined with `\n`. */
  data: string;
  /** The `id` field of this event, if it had one. */
  id: string | undefined;
}

/** Parses a stream of text into {@link SseMessage}s. */
export class SseParser {
  /** Text of a line not ended yet. */
  #buffer = "";
  /** The last piece ended with CR: a LF at the start of the next one ends no line. */
  #afterCr = false;
  #started = false;
  #event = "";
  #data: string[] = [];
  #id: string | undefined = undefined;

  /** Feeds the next piece of text; returns the events it completed. */
  push(text: string): SseMessage[] {
    // An empty piece (a chunk that decoded to nothing, such as the first bytes of a
    // character cut in two) changes nothing: above all, not whether a CR came last.
    if (text === "") return [];
    if (!this.#started) {
      this.#started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    if (this.#afterCr && text.startsWith("\n")) text = text.slice(1);
    this.#afterCr = false;
    const out: SseMessage[] = [];
    let rest = this.#buffer + text;
    for (;;) {
      const end = rest.search(/[\r\n]/);
      if (end < 0) break;
      const line = rest.slice(0, end);
      let next = end + 1;
      if (rest[end] === "\r") {
        if (next === rest.length) this.#afterCr = true;
        else if (rest[next] === "\n") next += 1;
      }
      rest = rest.slice(next);
      const message = this.#line(line);
      if (message !== undefined) out.push(message);
    }
    this.#buffer = rest;
    return out;
  }

  /** One line: a field, a comment, or the blank line that dispatches the event. */
  #line(line: string): SseMessage | undefined {
    if (line === "") return this.#dispatch();
    if (line.startsWith(":")) return undefined;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    switch (field) {
      case "event":
        this.#event = value;
        break;
      case "data":
        this.#data.push(value);
        break;
      case "id":
        if (!value.includes("\0")) this.#id = value;
        break;
      default:
        // `retry` and unknown fields: nothing this client uses.
        break;
    }
    return undefined;
  }

  #dispatch(): SseMessage | undefined {
    const message =
      this.#data.length === 0
        ? undefined
        : { event: this.#event === "" ? "message" : this.#event, data: this.#data.join("\n"), id: this.#id };
    this.#event = "";
    this.#data = [];
    this.#id = undefined;
    return message;
  }
}
