import { randomUUID } from "node:crypto";
import { afterAll, inject } from "vitest";
import { CairnClient, type CairnClientOptions } from "../src/index.js";

/** The shared server's target (CAIRN_TARGET or the server started by global-setup). */
export const target = (): string => inject("cairnTarget");

/** A thread id nobody else uses (the server is shared between suites). */
export const newThread = (prefix = "ts"): string => `${prefix}-${randomUUID()}`;

/** A client of the shared server, closed after the file's tests. */
export function sharedClient(options?: CairnClientOptions): CairnClient {
  const client = new CairnClient(target(), options);
  afterAll(() => client.close());
  return client;
}

export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
