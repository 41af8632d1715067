/**
 * The Cairn servers of the test run, as the Python harness names them (it starts them all:
 * `python -m cairn_tools.cluster -- npm test`, which run_tests.sh and scripts/test_all.sh use; see
 * tools/cairn_tools/cluster.py). Nothing is started here.
 *
 * - cairnTarget ($CAIRN_TARGET): the shared server (Postgres + Redis). Client, graph and cross-language tests.
 * - privateTarget/privateToken ($CAIRN_AUTH_TARGET, the first of $CAIRN_AUTH_TOKENS): a unix-socket server with
 *   bearer-token auth; the token maps to a tenant nobody else writes to, which LangGraph's validation suite needs
 *   (it lists checkpoints across all threads and uses fixed thread ids).
 * - tlsTarget/tlsDir ($CAIRN_MTLS_TARGET, $CAIRN_TLS_DIR): a mutual-TLS server and the CA and client certificate;
 *   left out (its test skipped) when the harness had no openssl.
 */
import type { TestProject } from "vitest/node";

declare module "vitest" {
  export interface ProvidedContext {
    cairnTarget: string;
    privateTarget: string;
    privateToken: string;
    privateError: string;
    tlsTarget: string;
    tlsDir: string;
  }
}

const HOW_TO =
  "run the suite through the Python harness, which starts the servers and sets CAIRN_TARGET and the rest: " +
  "`python -m cairn_tools.cluster -- npm test` (or client_ts/run_tests.sh), after `pip install -e '.[dev]'` " +
  "in the repository root";

export default function setup(project: TestProject): void {
  const env = process.env;
  if (!env.CAIRN_TARGET) throw new Error(`No Cairn server for the tests: ${HOW_TO}`);
  project.provide("cairnTarget", env.CAIRN_TARGET);
  const token = (env.CAIRN_AUTH_TOKENS ?? "").split(/\s+/).filter(Boolean)[0] ?? "";
  project.provide("privateTarget", env.CAIRN_AUTH_TARGET && token ? env.CAIRN_AUTH_TARGET : "");
  project.provide("privateToken", token);
  project.provide("privateError", `LangGraph's validation suite needs $CAIRN_AUTH_TARGET and $CAIRN_AUTH_TOKENS: ${HOW_TO}`);
  project.provide("tlsTarget", env.CAIRN_MTLS_TARGET ?? "");
  project.provide("tlsDir", env.CAIRN_TLS_DIR ?? "");
}
