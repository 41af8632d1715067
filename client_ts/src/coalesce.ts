/**
 * Concurrent calls of one kind, sent together as one batch call (client_py's `cairn_client/coalesce.py` in
 * TypeScript, with the same rules).
 *
 * A graph runtime runs many graphs in one Node.js process, and each saves after every step. Sent one call each,
 * every save pays gRPC's per-call cost at both ends: on a ~37 KB state that is most of the server's CPU per save
 * and most of the client's. A {@link Coalescer} pays that cost per batch instead:
 *
 * - a call goes straight out while fewer than `maxInflight` calls of its kind are in flight, so a lone caller
 *   waits for nothing and low concurrency sees no change;
 * - calls made while those are in flight queue, and each sender that comes free takes a share of the queue
 *   (ceil(queued / free senders), at most `maxItems` and `maxBytes`) as one batch call (SaveBatch, BatchLoad).
 *
 * No timer, the same rule as the server's group commit: a sender starts one microtask after the call that
 * started it, so the calls made in the same turn of the event loop (a `Promise.all` over many saves) queue first
 * and leave as shares. Each caller keeps its own deadline and AbortSignal: a batch is sent with the latest
 * deadline of its items, and an item whose own deadline passes first rejects with a DeadlineExceededError (an
 * aborted one with a CancelledError), as its unary call would have; the batch goes on for the others. A batch
 * call that fails as a whole fails each of its items with that error, except two the batch caused: a server
 * without the batch method (UNIMPLEMENTED, a server older than the client) gets these and every later call on its
 * own, and one with a smaller --max-batch-items (INVALID_ARGUMENT naming the batch's field) gets these alone and
 * later batches half as large.
 */
import { CairnError, cancelledError, Code, DeadlineExceededError } from "./errors.js";

/** The unary call: (request, deadline in ms from now, Infinity = none, the caller's signal) -> its response. */
export type SendOne<Req, Res> = (req: Req, deadlineMs: number, signal?: AbortSignal) => Promise<Res>;

/**
 * The batch call: (requests, deadline in ms from now) -> one response or {@link CairnError} per request, in
 * order; rejects when the call fails as a whole.
 */
export type SendMany<Req, Res> = (reqs: Req[], deadlineMs: number) => Promise<Array<Res | CairnError>>;

/** The bounds of a {@link Coalescer}. */
export interface CoalescerOptions<Req> {
  /** Calls of this kind in flight before concurrent ones wait to go together. */
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

/** The field a batch call's INVALID_ARGUMENT names when it has more items than the server's --max-batch-items. */
const BATCH_FIELDS = new Set(["saves", "loads"]);

/** setTimeout fires at once for delays past this (a 32-bit int); such a deadline is left to the call itself. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Sends calls of one kind alone while few are in flight, and together once more wait; see the module. */
export class Coalescer<Req, Res> {
  /** False once the server said it has no batch method: every call then goes on its own. */
  batching = true;
  /** The most requests in one batch call: `options.maxItems`, lowered when the server refuses a batch as too large. */
  maxItems: number;
  private readonly queue: Array<Entry<Req, Res>> = [];
  private inflight = 0; // senders
  private sending = 0; // of them, those with a call on the wire

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
          clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
          if ("ok" in outcome) resolve(outcome.ok);
          else reject(outcome.err);
        },
      };
      this.queue.push(entry);
      if (this.inflight < this.options.maxInflight) {
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

  /** The next batch: queued calls whose callers still wait, up to maxItems and maxBytes. */
  private take(): Array<Entry<Req, Res>> {
    const { maxInflight, maxBytes, size } = this.options;
    // Callers woken by one answer call again together: a share of the queue per free sender (not all of it for
    // the first) keeps maxInflight batches on the wire, so the server and its cold store work on some while the
    // others travel.
    const free = Math.max(1, maxInflight - this.sending);
    const limit = this.batching ? Math.min(this.maxItems, Math.ceil(this.queue.length / free)) : 1;
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
    if (entry.done) return;
    try {
      entry.settle({ ok: await this.sendOne(entry.req, entry.deadline - Date.now(), entry.signal) });
    } catch (err) {
      entry.settle({ err });
    }
  }

  private async many(batch: Array<Entry<Req, Res>>): Promise<void> {
    const deadline = Math.max(...batch.map((e) => e.deadline));
    let answers: Array<Res | CairnError>;
    try {
      answers = await this.sendMany(
        batch.map((e) => e.req),
        deadline - Date.now(),
      );
    } catch (err) {
      if (err instanceof CairnError && err.code === Code.UNIMPLEMENTED) {
        this.batching = false; // a server older than the batch method
        await Promise.all(batch.map((entry) => this.one(entry)));
        return;
      }
      if (err instanceof CairnError && err.code === Code.INVALID_ARGUMENT && BATCH_FIELDS.has(err.metadata.field ?? "")) {
        // More items than the server's --max-batch-items: these go alone, later batches half as large (min: a
        // larger batch refused meanwhile must not raise a limit another refusal already lowered).
        this.maxItems = Math.min(this.maxItems, Math.max(1, Math.floor(batch.length / 2)));
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
