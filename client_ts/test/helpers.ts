import { randomUUID } from "node:crypto";
import { inject } from "vitest";
import { CairnClient, type CairnClientOptions } from "../src/index.js";

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
