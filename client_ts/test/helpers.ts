import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { InterceptingCall, type Interceptor } from "@grpc/grpc-js";
import { inject } from "vitest";
import { CairnClient, type CairnClientOptions, type Checkpoint } from "../src/index.js";

/** The shared server's target (CAIRN_TARGET or the server started by global-setup). */
export const target = (): string => inject("cairnTarget");

/** Options for the shared server: its token ($CAIRN_TOKEN) when it requires one. */
export const sharedOptions = (): CairnClientOptions => ({ token: process.env.CAIRN_TOKEN || undefined });

/** A thread id nobody else uses (the server is shared between suites). */
export const newThread = (prefix = "ts"): string => `${prefix}-${randomUUID()}`;

/** A client of the shared server, closed after the file's tests. */
export function sharedClient(options?: CairnClientOptions): CairnClient {
  const client = new CairnClient(target(), { ...sharedOptions(), ...options });
  afterAll(() => client.close());
  return client;
}

export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A message a {@link Recorder} saw: the RPC's name ("Save", "Load", ...) and the message object. */
export interface Seen {
  method: string;
  message: unknown;
}

/** A grpc-js interceptor (for `channelOptions: { interceptors: [...] }`) keeping every message sent and received. */
export class Recorder {
  readonly sent: Seen[] = [];
  readonly received: Seen[] = [];
  readonly interceptor: Interceptor = (options, nextCall) => {
    const method = options.method_definition.path.split("/").pop()!;
    return new InterceptingCall(nextCall(options), {
      start: (metadata, _listener, next) => {
        next(metadata, {
          onReceiveMessage: (message, nextMessage) => {
            this.received.push({ method, message });
            nextMessage(message);
          },
        });
      },
      sendMessage: (message, next) => {
        this.sent.push({ method, message });
        next(message);
      },
    });
  };

  clear(): void {
    this.sent.length = 0;
    this.received.length = 0;
  }

  /** The checkpoints sent by Save and SaveStream calls (as they went on the wire). */
  savedCheckpoints(method: "Save" | "SaveStream" = "Save"): Checkpoint[] {
    return this.sent
      .filter((s) => s.method === method)
      .map((s) => s.message as { checkpoint?: Checkpoint; save?: { checkpoint: Checkpoint } })
      .map((m) => (m.checkpoint ?? m.save!.checkpoint));
  }

  /** The checkpoints received from Load, List or BatchLoad calls (as they came on the wire). */
  readCheckpoints(method: "Load" | "List" | "BatchLoad"): Checkpoint[] {
    return this.received
      .filter((r) => r.method === method)
      .flatMap((r) => {
        const m = r.message as { checkpoint?: Checkpoint; checkpoints?: Checkpoint[]; results?: Array<{ load?: { checkpoint: Checkpoint } }> };
        return m.checkpoint ? [m.checkpoint] : (m.checkpoints ?? (m.results ?? []).flatMap((x) => (x.load ? [x.load.checkpoint] : [])));
      });
  }
}

/**
 * Starts `cairn serve ARGS` on the embedded store through the Python harness's CairnProcess (a free port, ready
 * when it answers), prints its target, and stops it when its stdin closes: when the test file is done, or when the
 * test process dies (the harness's watchdog then kills the server). The server reads CAIRN_* variables as its
 * settings, and the harness's (such as CAIRN_AUTH_TOKENS) describe other servers: only ARGS set this one.
 */
const START_SCRIPT = `import os, sys
from cairn_tools.cluster import CairnProcess
for name in [n for n in os.environ if n.startswith("CAIRN_") and n != "CAIRN_BIN" and not n.startswith("CAIRN_TEST_")]:
    del os.environ[name]
with CairnProcess.embedded(*sys.argv[1:], "--log-level", "WARNING") as server:
    print(server.target, flush=True)
    sys.stdin.read()
`;

/**
 * A Cairn server of the test file's own (embedded store, `cairn serve ...args`), for server flags the shared server
 * lacks; stopped after the file's tests. Python is $CAIRN_PYTHON, else python3, with the repository installed.
 *
 * @returns the server's target.
 */
export function startServer(...args: string[]): Promise<string> {
  const python = process.env.CAIRN_PYTHON || "python3";
  const child = spawn(python, ["-c", START_SCRIPT, ...args], { stdio: ["pipe", "pipe", "inherit"] });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  afterAll(async () => {
    child.stdin.end();
    await exited;
  });
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes("\n")) resolve(out.trim());
    });
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`cairn serve ${args.join(" ")} did not start (${python} exited ${code})`)));
  });
}
