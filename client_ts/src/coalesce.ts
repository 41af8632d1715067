/**
 * Concurrent calls of one kind, sent together as one batch call (client_py's `cairn_client/coalesce.py` in
 * TypeScript, with the same rules).
 *
 * A graph runtime runs many graphs in one Node.js process, and each saves after every step. Sent one call each,
 * every save pays gRPC's per-call cost at both ends: on a ~37 KB state that is most of the server's CPU per save
 * and most of the client's. A {@link Coalescer} pays that cost per batch instead:
 *
 * - a call goes straight out when none of its kind is in flight, so a lone caller waits for nothing;
 * - calls made while one is in flight queue; another sender starts once {@link MIN_BATCH} of them wait (up to
 *   `maxInflight` senders), and each sender takes a share of the queue (max(MIN_BATCH, ceil(queued / free
 *   senders)), at most `maxItems` and `maxBytes`) as one batch call (SaveBatch, BatchLoad), then goes on while
 *   calls wait.
 *
 * No timer, the same rule as the server's group commit: a sender starts one microtask after the call that
 * started it, so the calls made in the same turn of the event loop (a `Promise.all` over many saves) queue first
 * and leave as shares. Each caller keeps its own deadline and AbortSignal: a batch is sent with the latest
 * deadline of its items, and an item whose own deadline passes first rejects with a DeadlineExceededError (an
 * aborted one with a CancelledError), as its unary call would have; the batch goes on for the others. A batch
 * call that fails as a whole fails each of its items with that error, except when the server refused the batch
 * itself: without the batch method (UNIMPLEMENTED, a server older than the client) every item and every later
 * call goes on its own; over the server's batch limits (INVALID_ARGUMENT, RESOURCE_EXHAUSTED: more items than its
 * --max-batch-items, or a message larger than it takes) the items whose callers still wait go on their own and
 * later batches are half as large (in items and in bytes), so each caller gets the answer its own call would
 * have. {@link Coalescer.close} (the client's close) answers every caller still waiting, queued or in a batch on
 * the wire, with a CancelledError at once instead of leaving them to their deadlines.
 */
import { setMaxListeners } from "node:events";
import { CairnError, CancelledError, cancelledError, Code, DeadlineExceededError } from "./errors.js";

/** The unary call: (request, deadline in ms from now, Infinity = none, the caller's signal) -> its response. */
export type SendOne<Req, Res> = (req: Req, deadlineMs: number, signal?: AbortSignal) => Promise<Res>;

/**
 * The batch call: (requests, deadline in ms from now, a signal that cancels it) -> one response or
 * {@link CairnError} per request, in order; rejects when the call fails as a whole.
 */
export type SendMany<Req, Res> = (reqs: Req[], deadlineMs: number, signal?: AbortSignal) => Promise<Array<Res | CairnError>>;

/** The bounds of a {@link Coalescer}. */
export interface CoalescerOptions<Req> {
  /** The most senders of this kind with a call on the wire at once (a second starts once MIN_BATCH calls wait). */
  maxInflight: number;
  /** The most requests in one batch call. */
  maxItems: number;
  /** The most request bytes (by `size`) in one batch call; the first request always goes. */
  maxBytes: number;
  /** A request's size in bytes. */
  size: (req: Req) => number;
  /**
   * Item errors that a batch caused (a response budget its items shared) and that the unary call would not give:
   * such an item is sent again on its own.
   */
  retryAlone?: (err: CairnError) => boolean;
}

/** One caller's call, from the moment it queues until it is settled. */
interface Entry<Req, Res> {
  req: Req;
  /** Date.now() time past which the caller gives up; Infinity = never. */
  deadline: number;
  signal?: AbortSignal;
  settle: (outcome: { ok: Res } | { err: unknown }) => void;
  /** Settled: answered, past its deadline, or aborted (a queued one is then skipped). */
  done: boolean;
}

/** Whole-call failures of a batch call that the batch caused and its items alone would not meet. */
const BATCH_REFUSED = new Set<Code>([Code.INVALID_ARGUMENT, Code.RESOURCE_EXHAUSTED]);

/**
 * A second sender starts only once this many calls wait. At 4 graphs this took the server's CPU per save from
 * ~800-1,100 to ~560-630 µs at the same or lower latency (calls going alone each paid gRPC's per-call cost); at 32
 * it changed nothing measurable (measured with the Python client, whose coalescer this one follows).
 */
export const MIN_BATCH = 4;

/** The error of a caller still waiting when its client closed. */
function closedError(): CancelledError {
  return new CancelledError({ code: Code.CANCELLED, message: "the client was closed while the call waited" });
}

/** setTimeout fires at once for delays past this (a 32-bit int); such a deadline is left to the call itself. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Sends calls of one kind alone while few are in flight, and together once more wait; see the module. */
export class Coalescer<Req, Res> {
  /** False once the server said it has no batch method: every call then goes on its own. */
  batching = true;
  /** The most requests in one batch call: `options.maxItems`, lowered when the server refuses a batch as too large. */
  maxItems: number;
  /** The most request bytes in one batch call: `options.maxBytes`, lowered with `maxItems`. */
  maxBytes: number;
  private readonly queue: Array<Entry<Req, Res>> = [];
  private inflight = 0; // senders
  private sending = 0; // of them, those with a call on the wire
  /** Every caller not yet answered, queued or in a call on the wire: close() answers them. */
  private readonly waiting = new Set<Entry<Req, Res>>();
  /** Aborted by close(): cancels the calls on the wire, each of which listens to it while it is out. */
  private readonly closing = new AbortController();

  /**
   * @param sendOne the unary call.
   * @param sendMany the batch call.
   * @param options the bounds: `maxInflight`, `maxItems`, `maxBytes`, `size`, `retryAlone`.
   */
  constructor(
    private readonly sendOne: SendOne<Req, Res>,
    private readonly sendMany: SendMany<Req, Res>,
    private readonly options: CoalescerOptions<Req>,
  ) {
    this.maxItems = options.maxItems;
    this.maxBytes = options.maxBytes;
    // One listener per call on the wire: as many as the callers, not a leak.
    setMaxListeners(0, this.closing.signal);
  }

  /**
   * The response to `req`, sent alone or in a batch.
   *
   * @param req the request.
   * @param deadlineMs this caller's deadline in ms from now (Infinity = none).
   * @param signal this caller's AbortSignal.
   * @returns the response; rejects with the call's or the item's {@link CairnError}, a DeadlineExceededError
   *   when `deadlineMs` passes first, a CancelledError when `signal` fires first.
   */
  call(req: Req, deadlineMs: number, signal?: AbortSignal): Promise<Res> {
    if (signal?.aborted) return Promise.reject(cancelledError(signal));
    if (this.closing.signal.aborted) return Promise.reject(closedError());
    return new Promise<Res>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const onAbort = () => entry.settle({ err: cancelledError(signal!) });
      const entry: Entry<Req, Res> = {
        req,
        deadline: Number.isFinite(deadlineMs) ? Date.now() + deadlineMs : Infinity,
        signal,
        done: false,
        settle: (outcome) => {
          if (entry.done) return; // the caller left, or its deadline passed
          entry.done = true;
          this.waiting.delete(entry);
          clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
          if ("ok" in outcome) resolve(outcome.ok);
          else reject(outcome.err);
        },
      };
      this.queue.push(entry);
      this.waiting.add(entry);
      // One sender goes at once; another starts only once a batch's worth waits, so low concurrency pays a call
      // per few saves rather than one each (most of a small call's CPU is gRPC's per call), and high concurrency
      // still keeps maxInflight batches on the wire.
      if (this.inflight === 0 || (this.inflight < this.options.maxInflight && this.queue.length >= MIN_BATCH)) {
        this.inflight += 1;
        void this.drain();
      }
      // The item's own deadline, which may come before that of the batch it rides in.
      if (Number.isFinite(deadlineMs) && deadlineMs <= MAX_TIMER_MS) {
        const expired = () => {
          const message = `no answer within the deadline of ${deadlineMs} ms`;
          entry.settle({ err: new DeadlineExceededError({ code: Code.DEADLINE_EXCEEDED, message }) });
        };
        timer = setTimeout(expired, Math.max(deadlineMs, 0));
      }
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /**
   * Answers every caller still waiting, queued or in a call on the wire, with a CancelledError, and cancels the
   * calls on the wire: the client is closing, and they would otherwise wait out their deadlines. Later calls
   * reject at once.
   */
  close(): void {
    this.closing.abort();
    this.queue.length = 0;
    for (const entry of [...this.waiting]) entry.settle({ err: closedError() });
  }

  /** The next batch: queued calls whose callers still wait, up to maxItems and maxBytes. */
  private take(): Array<Entry<Req, Res>> {
    const { maxInflight, size } = this.options;
    const maxBytes = this.maxBytes;
    // Callers woken by one answer call again together: a share of the queue per free sender (not all of it for
    // the first) keeps maxInflight batches on the wire, so the server and its cold store work on some while the
    // others travel.
    const free = Math.max(1, maxInflight - this.sending);
    const limit = this.batching ? Math.min(this.maxItems, Math.max(MIN_BATCH, Math.ceil(this.queue.length / free))) : 1;
    const batch: Array<Entry<Req, Res>> = [];
    let total = 0;
    let taken = 0;
    for (const entry of this.queue) {
      if (batch.length >= limit) break;
      taken += 1;
      if (entry.done) continue; // aborted, or past its deadline, before it was sent
      total += size(entry.req);
      if (batch.length > 0 && total > maxBytes) {
        taken -= 1;
        break;
      }
      batch.push(entry);
    }
    this.queue.splice(0, taken);
    return batch;
  }

  private async drain(): Promise<void> {
    try {
      await undefined; // one microtask: the calls of this turn queue before the first batch is taken
      while (this.queue.length > 0) {
        const batch = this.take();
        if (batch.length === 0) continue;
        this.sending += 1;
        try {
          if (batch.length === 1) await this.one(batch[0]!);
          else await this.many(batch);
        } finally {
          this.sending -= 1;
        }
      }
    } finally {
      this.inflight -= 1;
    }
  }

  private async one(entry: Entry<Req, Res>): Promise<void> {
    if (entry.done) return; // the caller left (deadline, signal, close) before its call went
    // The call ends when its caller aborts or when the coalescer closes, whichever comes first.
    const both = new AbortController();
    const callerLeft = () => both.abort(entry.signal!.reason);
    const closed = () => both.abort(this.closing.signal.reason);
    entry.signal?.addEventListener("abort", callerLeft, { once: true });
    this.closing.signal.addEventListener("abort", closed, { once: true });
    try {
      entry.settle({ ok: await this.sendOne(entry.req, entry.deadline - Date.now(), both.signal) });
    } catch (err) {
      entry.settle({ err });
    } finally {
      entry.signal?.removeEventListener("abort", callerLeft);
      this.closing.signal.removeEventListener("abort", closed);
    }
  }

  private async many(batch: Array<Entry<Req, Res>>): Promise<void> {
    const deadline = Math.max(...batch.map((e) => e.deadline));
    let answers: Array<Res | CairnError>;
    try {
      answers = await this.sendMany(
        batch.map((e) => e.req),
        deadline - Date.now(),
        this.closing.signal,
      );
    } catch (err) {
      if (err instanceof CairnError && err.code === Code.UNIMPLEMENTED) {
        this.batching = false; // a server older than the batch method
        await Promise.all(batch.map((entry) => this.one(entry)));
        return;
      }
      if (err instanceof CairnError && BATCH_REFUSED.has(err.code)) {
        // More items or bytes than this server takes in one call: these go alone (one() skips callers that
        // left), later batches half as large (min: a refusal answered late, for a batch sent before an earlier
        // one shrank the limits, keeps them).
        const bytes = batch.reduce((sum, e) => sum + this.options.size(e.req), 0);
        this.maxItems = Math.min(this.maxItems, Math.max(1, Math.floor(batch.length / 2)));
        this.maxBytes = Math.min(this.maxBytes, Math.max(1, Math.floor(bytes / 2)));
        await Promise.all(batch.map((entry) => this.one(entry)));
        return;
      }
      for (const entry of batch) entry.settle({ err });
      return;
    }
    const alone: Array<Entry<Req, Res>> = [];
    for (const [i, entry] of batch.entries()) {
      const answer = answers[i]!;
      if (answer instanceof CairnError) {
        if (this.options.retryAlone?.(answer)) alone.push(entry);
        else entry.settle({ err: answer });
      } else {
        entry.settle({ ok: answer });
      }
    }
    if (alone.length > 0) await Promise.all(alone.map((entry) => this.one(entry)));
  }
}
