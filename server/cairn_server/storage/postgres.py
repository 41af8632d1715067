"""Postgres cold store (asyncpg).

A save is one round trip: the plpgsql function cairn_save() locks the
(thread, namespace) row of cairn_threads (so compare-and-set and sequence
numbers are serialised per thread head), checks idempotency and the expected
head, and inserts. A batch of saves (SaveStream) is one statement and one
commit. States are stored already compressed in a column with STORAGE
EXTERNAL, so Postgres does not compress them again (that would cost about a
millisecond of CPU per 37 KB state, for nothing).

Every asyncpg/OS exception is mapped here, once, to the errors of cairn.errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg

from cairn.errors import CairnError, InvalidArgument, TargetNotEmpty, Unavailable
from .records import (
    ListQuery,
    RetentionCursor,
    SaveItem,
    SaveOutcome,
    SaveStatus,
    StoredCheckpoint,
    StoredWrite,
    ThreadSummary,
    WritesItem,
)
from .rows import checkpoint_from_row, within_budget, write_from_row
from .failures import missing_checkpoint, write_conflict
from .prune import outside_head_chains
from .freshness import ThreadVersion, VersionKey
from .runs_postgres import borrowed, fenced_put_writes, fenced_save, migrate_runs

# Ordered list: the index + 1 is the schema version. Never edit a released entry; append.
MIGRATIONS = [
    """
    CREATE TABLE cairn_threads (
        tenant text NOT NULL, thread_id text NOT NULL, namespace text NOT NULL,
        last_sequence bigint NOT NULL, updated_at timestamptz NOT NULL,
        PRIMARY KEY (tenant, thread_id, namespace)
    );
    CREATE TABLE cairn_checkpoints (
        tenant text NOT NULL, thread_id text NOT NULL, namespace text NOT NULL, checkpoint_id text NOT NULL,
        row_id bigserial NOT NULL,
        parent_checkpoint_id text NOT NULL, sequence bigint NOT NULL, created_at timestamptz NOT NULL,
        state_type text NOT NULL, node_name text NOT NULL, next_nodes text[] NOT NULL, metadata jsonb NOT NULL,
        codec smallint NOT NULL, raw_size integer NOT NULL, checksum bigint NOT NULL, content_hash bytea NOT NULL,
        state bytea NOT NULL,
        PRIMARY KEY (tenant, thread_id, namespace, checkpoint_id)
    );
    ALTER TABLE cairn_checkpoints ALTER COLUMN state SET STORAGE EXTERNAL;
    CREATE INDEX cairn_checkpoints_thread_row ON cairn_checkpoints (tenant, thread_id, row_id DESC);
    CREATE INDEX cairn_checkpoints_metadata ON cairn_checkpoints USING gin (metadata jsonb_path_ops);
    CREATE TABLE cairn_writes (
        tenant text NOT NULL, thread_id text NOT NULL, namespace text NOT NULL, checkpoint_id text NOT NULL,
        task_id text NOT NULL, idx integer NOT NULL, task_path text NOT NULL, channel text NOT NULL,
        value_type text NOT NULL, value bytea NOT NULL,
        PRIMARY KEY (tenant, thread_id, namespace, checkpoint_id, task_id, idx),
        FOREIGN KEY (tenant, thread_id, namespace, checkpoint_id)
            REFERENCES cairn_checkpoints (tenant, thread_id, namespace, checkpoint_id) ON DELETE CASCADE
    );
    CREATE FUNCTION cairn_save(
        p_tenant text, p_thread text, p_ns text, p_id text, p_parent text, p_state_type text, p_node text,
        p_next text[], p_metadata jsonb, p_codec smallint, p_raw_size integer, p_checksum bigint, p_hash bytea,
        p_state bytea, p_expected_head text, p_expect_empty boolean, p_replace boolean,
        OUT status text, OUT seq bigint, OUT created timestamptz, OUT head text)
    LANGUAGE plpgsql AS $fn$
    DECLARE
        old record;
    BEGIN
        -- Lock the thread head (creating it if new); every writer of this head queues here.
        INSERT INTO cairn_threads AS t (tenant, thread_id, namespace, last_sequence, updated_at)
        VALUES (p_tenant, p_thread, p_ns, 0, now())
        ON CONFLICT (tenant, thread_id, namespace) DO UPDATE SET last_sequence = t.last_sequence
        RETURNING t.last_sequence INTO seq;
        SELECT c.sequence, c.created_at, c.content_hash INTO old FROM cairn_checkpoints c
        WHERE c.tenant = p_tenant AND c.thread_id = p_thread AND c.namespace = p_ns AND c.checkpoint_id = p_id;
        IF FOUND THEN
            seq := old.sequence;
            created := old.created_at;
            IF old.content_hash = p_hash THEN
                status := 'exists';
            ELSIF NOT p_replace THEN
                status := 'conflict';
            ELSE
                UPDATE cairn_checkpoints SET parent_checkpoint_id = p_parent, state_type = p_state_type,
                    node_name = p_node, next_nodes = p_next, metadata = p_metadata, codec = p_codec,
                    raw_size = p_raw_size, checksum = p_checksum, content_hash = p_hash, state = p_state
                WHERE tenant = p_tenant AND thread_id = p_thread AND namespace = p_ns AND checkpoint_id = p_id;
                status := 'replaced';
            END IF;
            RETURN;
        END IF;
        IF p_expected_head IS NOT NULL OR p_expect_empty THEN
            SELECT c.checkpoint_id INTO head FROM cairn_checkpoints c
            WHERE c.tenant = p_tenant AND c.thread_id = p_thread AND c.namespace = p_ns
            ORDER BY c.row_id DESC LIMIT 1;
            IF coalesce(head, '') IS DISTINCT FROM coalesce(p_expected_head, '') THEN
                status := 'head_moved';
                head := coalesce(head, '');
                RETURN;
            END IF;
        END IF;
        seq := seq + 1;
        created := clock_timestamp();
        UPDATE cairn_threads SET last_sequence = seq, updated_at = created
        WHERE tenant = p_tenant AND thread_id = p_thread AND namespace = p_ns;
        INSERT INTO cairn_checkpoints (tenant, thread_id, namespace, checkpoint_id, parent_checkpoint_id,
            sequence, created_at, state_type, node_name, next_nodes, metadata, codec, raw_size, checksum,
            content_hash, state)
        VALUES (p_tenant, p_thread, p_ns, p_id, p_parent, seq, created, p_state_type, p_node, p_next,
            p_metadata, p_codec, p_raw_size, p_checksum, p_hash, p_state);
        status := 'inserted';
    END
    $fn$;
    """,
    """
    CREATE TABLE cairn_dictionaries (
        dict_id bigint PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        samples integer NOT NULL, data bytea NOT NULL
    );
    """,
    # PutWrites, any number of them in one statement (group commit: one round trip). Each item locks its
    # checkpoint FOR KEY SHARE (a concurrent delete waits) and, by an advisory lock on its (checkpoint, task)
    # key, is alone in checking its writes against the stored ones and then storing them. An item that would
    # change a write it does not replace stores nothing and answers 'conflict' with that write's idx.
    """
    CREATE FUNCTION cairn_put_writes_many(
        p_lock bigint[], p_tenant text[], p_thread text[], p_ns text[], p_id text[], p_task text[], p_path text[],
        p_replace boolean[], p_first integer[], p_count integer[],
        p_idx integer[], p_channel text[], p_type text[], p_value bytea[])
    RETURNS TABLE (status text, written integer, conflict_idx integer)
    LANGUAGE plpgsql AS $fn$
    DECLARE
        lo integer;
        hi integer;
    BEGIN
        FOR i IN 1 .. coalesce(array_length(p_tenant, 1), 0) LOOP
            written := 0;
            conflict_idx := NULL;
            PERFORM 1 FROM cairn_checkpoints c WHERE c.tenant = p_tenant[i] AND c.thread_id = p_thread[i]
                AND c.namespace = p_ns[i] AND c.checkpoint_id = p_id[i] FOR KEY SHARE;
            IF NOT FOUND THEN
                status := 'missing';
                RETURN NEXT;
                CONTINUE;
            END IF;
            PERFORM pg_advisory_xact_lock(p_lock[i]);
            lo := p_first[i];
            hi := p_first[i] + p_count[i] - 1;
            IF NOT p_replace[i] THEN
                SELECT n.idx INTO conflict_idx
                FROM unnest(p_idx[lo:hi], p_channel[lo:hi], p_type[lo:hi], p_value[lo:hi]) WITH ORDINALITY
                    AS n(idx, channel, value_type, value, ord)
                JOIN cairn_writes w ON w.tenant = p_tenant[i] AND w.thread_id = p_thread[i]
                    AND w.namespace = p_ns[i] AND w.checkpoint_id = p_id[i] AND w.task_id = p_task[i]
                    AND w.idx = n.idx
                WHERE (w.channel, w.value_type, w.value) IS DISTINCT FROM (n.channel, n.value_type, n.value)
                ORDER BY n.ord LIMIT 1;
                IF FOUND THEN
                    status := 'conflict';
                    RETURN NEXT;
                    CONTINUE;
                END IF;
            END IF;
            INSERT INTO cairn_writes AS w (tenant, thread_id, namespace, checkpoint_id, task_id, idx, task_path,
                channel, value_type, value)
            SELECT p_tenant[i], p_thread[i], p_ns[i], p_id[i], p_task[i], n.idx, p_path[i], n.channel,
                n.value_type, n.value
            FROM unnest(p_idx[lo:hi], p_channel[lo:hi], p_type[lo:hi], p_value[lo:hi])
                AS n(idx, channel, value_type, value)
            ON CONFLICT (tenant, thread_id, namespace, checkpoint_id, task_id, idx) DO UPDATE SET
                task_path = excluded.task_path, channel = excluded.channel, value_type = excluded.value_type,
                value = excluded.value
            WHERE (w.channel, w.value_type, w.value) IS DISTINCT FROM (excluded.channel, excluded.value_type,
                excluded.value);
            GET DIAGNOSTICS written = ROW_COUNT;
            status := 'ok';
            RETURN NEXT;
        END LOOP;
    END
    $fn$;
    """,
    # List across threads walks a tenant's checkpoints newest first and stops at its page, instead of sorting all
    # of them, so a page costs the same however many the tenant has. Its first column is an expression only
    # that query names (_TENANT_FEED): a plain (tenant, row_id) index is what the planner picks, on a table
    # without statistics, even for a save's primary-key lookup, and then reads every row of the tenant (a fresh
    # database saved 10 times slower). Ascending, so new rows go to its right edge (~32 bytes a checkpoint; a
    # descending one splits its leftmost page on every insert); a backward scan gives the newest-first order.
    # Building it on a large table blocks saves until it is built.
    """
    CREATE INDEX cairn_checkpoints_tenant_feed ON cairn_checkpoints ((tenant || ''), row_id);
    """,    # Freshness (freshness.py): every change of a thread first locks the thread's row of cairn_versions, then
    # stamps it with a new number from one sequence, in the change's own transaction. Rows outlive Clear, so a
    # number is never reused. cairn_save locks it before the head, so a copy into the thread and a save to it
    # are serialized too.
    """
    CREATE SEQUENCE cairn_version_seq;
    CREATE TABLE cairn_versions (
        tenant text NOT NULL, thread_id text NOT NULL, version bigint NOT NULL, clobbered bigint NOT NULL,
        PRIMARY KEY (tenant, thread_id)
    );
    CREATE FUNCTION cairn_lock_thread(p_tenant text, p_thread text) RETURNS void LANGUAGE plpgsql AS $fn$
    BEGIN
        PERFORM 1 FROM cairn_versions WHERE tenant = p_tenant AND thread_id = p_thread FOR UPDATE;
        IF NOT FOUND THEN
            INSERT INTO cairn_versions VALUES (p_tenant, p_thread, 0, 0) ON CONFLICT DO NOTHING;
            PERFORM 1 FROM cairn_versions WHERE tenant = p_tenant AND thread_id = p_thread FOR UPDATE;
        END IF;
    END
    $fn$;
    -- A change of a thread its caller has locked: the new version. p_clobber for every change but inserting new
    -- checkpoints. nextval runs under the lock, so a thread's versions rise in commit order.
    CREATE FUNCTION cairn_bump(p_tenant text, p_thread text, p_clobber boolean) RETURNS bigint
    LANGUAGE plpgsql AS $fn$
    DECLARE
        v bigint := nextval('cairn_version_seq');
    BEGIN
        UPDATE cairn_versions SET version = v, clobbered = CASE WHEN p_clobber THEN v ELSE clobbered END
        WHERE tenant = p_tenant AND thread_id = p_thread;
        RETURN v;
    END
    $fn$;
    DROP FUNCTION cairn_save(text, text, text, text, text, text, text, text[], jsonb, smallint, integer, bigint,
        bytea, bytea, text, boolean, boolean);
    CREATE FUNCTION cairn_save(
        p_tenant text, p_thread text, p_ns text, p_id text, p_parent text, p_state_type text, p_node text,
        p_next text[], p_metadata jsonb, p_codec smallint, p_raw_size integer, p_checksum bigint, p_hash bytea,
        p_state bytea, p_expected_head text, p_expect_empty boolean, p_replace boolean,
        OUT status text, OUT seq bigint, OUT created timestamptz, OUT head text, OUT version bigint)
    LANGUAGE plpgsql AS $fn$
    DECLARE
        old record;
    BEGIN
        PERFORM cairn_lock_thread(p_tenant, p_thread);
        INSERT INTO cairn_threads AS t (tenant, thread_id, namespace, last_sequence, updated_at)
        VALUES (p_tenant, p_thread, p_ns, 0, now())
        ON CONFLICT (tenant, thread_id, namespace) DO UPDATE SET last_sequence = t.last_sequence
        RETURNING t.last_sequence INTO seq;
        SELECT c.sequence, c.created_at, c.content_hash INTO old FROM cairn_checkpoints c
        WHERE c.tenant = p_tenant AND c.thread_id = p_thread AND c.namespace = p_ns AND c.checkpoint_id = p_id;
        IF FOUND THEN
            seq := old.sequence;
            created := old.created_at;
            IF old.content_hash = p_hash THEN
                status := 'exists';
                SELECT v.version INTO version FROM cairn_versions v
                WHERE v.tenant = p_tenant AND v.thread_id = p_thread;
            ELSIF NOT p_replace THEN
                status := 'conflict';
            ELSE
                UPDATE cairn_checkpoints SET parent_checkpoint_id = p_parent, state_type = p_state_type,
                    node_name = p_node, next_nodes = p_next, metadata = p_metadata, codec = p_codec,
                    raw_size = p_raw_size, checksum = p_checksum, content_hash = p_hash, state = p_state
                WHERE tenant = p_tenant AND thread_id = p_thread AND namespace = p_ns AND checkpoint_id = p_id;
                status := 'replaced';
                version := cairn_bump(p_tenant, p_thread, true);
            END IF;
            RETURN;
        END IF;
        IF p_expected_head IS NOT NULL OR p_expect_empty THEN
            SELECT c.checkpoint_id INTO head FROM cairn_checkpoints c
            WHERE c.tenant = p_tenant AND c.thread_id = p_thread AND c.namespace = p_ns
            ORDER BY c.row_id DESC LIMIT 1;
            IF coalesce(head, '') IS DISTINCT FROM coalesce(p_expected_head, '') THEN
                status := 'head_moved';
                head := coalesce(head, '');
                RETURN;
            END IF;
        END IF;
        seq := seq + 1;
        created := clock_timestamp();
        UPDATE cairn_threads SET last_sequence = seq, updated_at = created
        WHERE tenant = p_tenant AND thread_id = p_thread AND namespace = p_ns;
        INSERT INTO cairn_checkpoints (tenant, thread_id, namespace, checkpoint_id, parent_checkpoint_id,
            sequence, created_at, state_type, node_name, next_nodes, metadata, codec, raw_size, checksum,
            content_hash, state)
        VALUES (p_tenant, p_thread, p_ns, p_id, p_parent, seq, created, p_state_type, p_node, p_next,
            p_metadata, p_codec, p_raw_size, p_checksum, p_hash, p_state);
        status := 'inserted';
        version := cairn_bump(p_tenant, p_thread, false);
    END
    $fn$;
    CREATE OR REPLACE FUNCTION cairn_put_writes_many(
        p_lock bigint[], p_tenant text[], p_thread text[], p_ns text[], p_id text[], p_task text[], p_path text[],
        p_replace boolean[], p_first integer[], p_count integer[],
        p_idx integer[], p_channel text[], p_type text[], p_value bytea[])
    RETURNS TABLE (status text, written integer, conflict_idx integer)
    LANGUAGE plpgsql AS $fn$
    DECLARE
        lo integer;
        hi integer;
    BEGIN
        FOR i IN 1 .. coalesce(array_length(p_tenant, 1), 0) LOOP
            written := 0;
            conflict_idx := NULL;
            PERFORM cairn_lock_thread(p_tenant[i], p_thread[i]);
            PERFORM 1 FROM cairn_checkpoints c WHERE c.tenant = p_tenant[i] AND c.thread_id = p_thread[i]
                AND c.namespace = p_ns[i] AND c.checkpoint_id = p_id[i] FOR KEY SHARE;
            IF NOT FOUND THEN
                status := 'missing';
                RETURN NEXT;
                CONTINUE;
            END IF;
            PERFORM pg_advisory_xact_lock(p_lock[i]);
            lo := p_first[i];
            hi := p_first[i] + p_count[i] - 1;
            IF NOT p_replace[i] THEN
                SELECT n.idx INTO conflict_idx
                FROM unnest(p_idx[lo:hi], p_channel[lo:hi], p_type[lo:hi], p_value[lo:hi]) WITH ORDINALITY
                    AS n(idx, channel, value_type, value, ord)
                JOIN cairn_writes w ON w.tenant = p_tenant[i] AND w.thread_id = p_thread[i]
                    AND w.namespace = p_ns[i] AND w.checkpoint_id = p_id[i] AND w.task_id = p_task[i]
                    AND w.idx = n.idx
                WHERE (w.channel, w.value_type, w.value) IS DISTINCT FROM (n.channel, n.value_type, n.value)
                ORDER BY n.ord LIMIT 1;
                IF FOUND THEN
                    status := 'conflict';
                    RETURN NEXT;
                    CONTINUE;
                END IF;
            END IF;
            INSERT INTO cairn_writes AS w (tenant, thread_id, namespace, checkpoint_id, task_id, idx, task_path,
                channel, value_type, value)
            SELECT p_tenant[i], p_thread[i], p_ns[i], p_id[i], p_task[i], n.idx, p_path[i], n.channel,
                n.value_type, n.value
            FROM unnest(p_idx[lo:hi], p_channel[lo:hi], p_type[lo:hi], p_value[lo:hi])
                AS n(idx, channel, value_type, value)
            ON CONFLICT (tenant, thread_id, namespace, checkpoint_id, task_id, idx) DO UPDATE SET
                task_path = excluded.task_path, channel = excluded.channel, value_type = excluded.value_type,
                value = excluded.value
            WHERE (w.channel, w.value_type, w.value) IS DISTINCT FROM (excluded.channel, excluded.value_type,
                excluded.value);
            GET DIAGNOSTICS written = ROW_COUNT;
            IF written > 0 THEN
                PERFORM cairn_bump(p_tenant[i], p_thread[i], true);
            END IF;
            status := 'ok';
            RETURN NEXT;
        END LOOP;
    END
    $fn$;
    """,
    # The fingerprint of each encryption key id a server was given (a server given another key under a known id
    # refuses to start), and corrupt checkpoints moved aside by QuarantineCheckpoint (kept, never deleted).
    """
    CREATE TABLE cairn_keys (key_id text PRIMARY KEY, fingerprint bytea NOT NULL, created_at timestamptz NOT NULL);
    CREATE TABLE cairn_quarantine (
        quarantine_id bigserial PRIMARY KEY, quarantined_at timestamptz NOT NULL, reason text NOT NULL,
        tenant text NOT NULL, thread_id text NOT NULL, namespace text NOT NULL, checkpoint_id text NOT NULL,
        parent_checkpoint_id text NOT NULL, sequence bigint NOT NULL, created_at timestamptz NOT NULL,
        state_type text NOT NULL, node_name text NOT NULL, next_nodes text[] NOT NULL, metadata jsonb NOT NULL,
        codec smallint NOT NULL, raw_size integer NOT NULL, checksum bigint NOT NULL, content_hash bytea NOT NULL,
        state bytea NOT NULL
    );
    """,
    # Partition readiness: a thread's head is its namespace's highest per-thread `sequence`, not its highest
    # row_id (a global bigserial whose order a distributed database does not keep), found by this index alone.
    # cairn_save is the version of the freshness migration with only that ORDER BY changed.
    # cairn_retention: one row per background job; `holder` and `expires_at` make it a lease (taken by an UPDATE
    # that only succeeds once the last holder's lease expired: valid behind pgbouncer's transaction pooling, which
    # no session advisory lock is), `version_cursor` the cairn_versions.version up to which count-based retention
    # has looked, `thread_cursor` the (tenant, thread_id) after which age-based retention goes on.
    """
    CREATE INDEX cairn_checkpoints_head ON cairn_checkpoints (tenant, thread_id, namespace, sequence DESC);
    CREATE TABLE cairn_retention (
        job text PRIMARY KEY, holder text NOT NULL DEFAULT '', expires_at timestamptz NOT NULL DEFAULT '-infinity',
        version_cursor bigint NOT NULL DEFAULT 0, tenant_cursor text NOT NULL DEFAULT '',
        thread_cursor text NOT NULL DEFAULT ''
    );
    CREATE INDEX cairn_versions_version ON cairn_versions (version);
    CREATE OR REPLACE FUNCTION cairn_save(
        p_tenant text, p_thread text, p_ns text, p_id text, p_parent text, p_state_type text, p_node text,
        p_next text[], p_metadata jsonb, p_codec smallint, p_raw_size integer, p_checksum bigint, p_hash bytea,
        p_state bytea, p_expected_head text, p_expect_empty boolean, p_replace boolean,
        OUT status text, OUT seq bigint, OUT created timestamptz, OUT head text, OUT version bigint)
    LANGUAGE plpgsql AS $fn$
    DECLARE
        old record;
    BEGIN
        PERFORM cairn_lock_thread(p_tenant, p_thread);
        INSERT INTO cairn_threads AS t (tenant, thread_id, namespace, last_sequence, updated_at)
        VALUES (p_tenant, p_thread, p_ns, 0, now())
        ON CONFLICT (tenant, thread_id, namespace) DO UPDATE SET last_sequence = t.last_sequence
        RETURNING t.last_sequence INTO seq;
        SELECT c.sequence, c.created_at, c.content_hash INTO old FROM cairn_checkpoints c
        WHERE c.tenant = p_tenant AND c.thread_id = p_thread AND c.namespace = p_ns AND c.checkpoint_id = p_id;
        IF FOUND THEN
            seq := old.sequence;
            created := old.created_at;
            IF old.content_hash = p_hash THEN
                status := 'exists';
                SELECT v.version INTO version FROM cairn_versions v
                WHERE v.tenant = p_tenant AND v.thread_id = p_thread;
            ELSIF NOT p_replace THEN
                status := 'conflict';
            ELSE
                UPDATE cairn_checkpoints SET parent_checkpoint_id = p_parent, state_type = p_state_type,
                    node_name = p_node, next_nodes = p_next, metadata = p_metadata, codec = p_codec,
                    raw_size = p_raw_size, checksum = p_checksum, content_hash = p_hash, state = p_state
                WHERE tenant = p_tenant AND thread_id = p_thread AND namespace = p_ns AND checkpoint_id = p_id;
                status := 'replaced';
                version := cairn_bump(p_tenant, p_thread, true);
            END IF;
            RETURN;
        END IF;
        IF p_expected_head IS NOT NULL OR p_expect_empty THEN
            SELECT c.checkpoint_id INTO head FROM cairn_checkpoints c
            WHERE c.tenant = p_tenant AND c.thread_id = p_thread AND c.namespace = p_ns
            ORDER BY c.sequence DESC LIMIT 1;
            IF coalesce(head, '') IS DISTINCT FROM coalesce(p_expected_head, '') THEN
                status := 'head_moved';
                head := coalesce(head, '');
                RETURN;
            END IF;
        END IF;
        seq := seq + 1;
        created := clock_timestamp();
        UPDATE cairn_threads SET last_sequence = seq, updated_at = created
        WHERE tenant = p_tenant AND thread_id = p_thread AND namespace = p_ns;
        INSERT INTO cairn_checkpoints (tenant, thread_id, namespace, checkpoint_id, parent_checkpoint_id,
            sequence, created_at, state_type, node_name, next_nodes, metadata, codec, raw_size, checksum,
            content_hash, state)
        VALUES (p_tenant, p_thread, p_ns, p_id, p_parent, seq, created, p_state_type, p_node, p_next,
            p_metadata, p_codec, p_raw_size, p_checksum, p_hash, p_state);
        status := 'inserted';
        version := cairn_bump(p_tenant, p_thread, false);
    END
    $fn$;
    """,
    # The read every Load and List asks first (freshness.py), as a function whose plan is made once per connection:
    # as a plain statement, Postgres planned it again on every call (its array arguments make each custom plan
    # look cheaper than the generic one), which was more than half of its cost.
    """
    CREATE FUNCTION cairn_versions_of(p_tenants text[], p_threads text[], p_namespaces text[], p_heads bool[])
    RETURNS TABLE (version bigint, clobbered bigint, head text) LANGUAGE plpgsql STABLE
    SET plan_cache_mode = force_generic_plan AS $fn$
    #variable_conflict use_column
    BEGIN
        RETURN QUERY
        SELECT coalesce(v.version, 0)::bigint, coalesce(v.clobbered, 0)::bigint,
            CASE WHEN k.want_head THEN (SELECT c.checkpoint_id FROM cairn_checkpoints c
                WHERE c.tenant = k.t AND c.thread_id = k.th AND c.namespace = k.ns ORDER BY c.sequence DESC LIMIT 1) END
        FROM unnest(p_tenants, p_threads, p_namespaces, p_heads) WITH ORDINALITY AS k(t, th, ns, want_head, ord)
        LEFT JOIN cairn_versions v ON v.tenant = k.t AND v.thread_id = k.th
        ORDER BY k.ord;
    END $fn$;
    """,
    # Every statement of these functions finds its rows by a key an index holds, but plpgsql plans each once per
    # connection and keeps the plan. Planned while the tables were small (a new database, or statistics from its
    # first minutes), the lookups were sequential scans and stayed so as the tables grew: on `make bench`'s fresh
    # database every save read cairn_threads whole until autovacuum's first analyze (65 M rows read in 70 s), and
    # Postgres's CPU per save rose from ~220 to ~400 us meanwhile; with statistics from when the tables held a row
    # each, cairn_versions, cairn_checkpoints and cairn_writes too (tests/test_reliability.py). Without
    # sequential scans to pick from, the planner takes the index whatever it believes the size is. A setting of
    # the function, not of the session: pgbouncer refuses unknown startup parameters and pools sessions. (A Load's
    # own prepared statements can be cached the same way, until the next analyze; they are not guarded.) A later
    # CREATE OR REPLACE of one of these functions replaces its settings too, so it must say SET enable_seqscan = off.
    """
    ALTER FUNCTION cairn_save(text, text, text, text, text, text, text, text[], jsonb, smallint, integer, bigint,
        bytea, bytea, text, boolean, boolean) SET enable_seqscan = off;
    ALTER FUNCTION cairn_lock_thread(text, text) SET enable_seqscan = off;
    ALTER FUNCTION cairn_bump(text, text, boolean) SET enable_seqscan = off;
    ALTER FUNCTION cairn_put_writes_many(bigint[], text[], text[], text[], text[], text[], text[], boolean[],
        integer[], integer[], integer[], text[], text[], bytea[]) SET enable_seqscan = off;
    ALTER FUNCTION cairn_versions_of(text[], text[], text[], bool[]) SET enable_seqscan = off;
    """,
]
_QUARANTINED = (
    "tenant, thread_id, namespace, checkpoint_id, parent_checkpoint_id, sequence, created_at, state_type, node_name, "
    "next_nodes, metadata, codec, raw_size, checksum, content_hash, state"
)

# The expression of the cairn_checkpoints_tenant_feed index; only a List across threads may name it.
_TENANT_FEED = "(tenant || '')"

_COLS = (
    "row_id, tenant, thread_id, namespace, checkpoint_id, parent_checkpoint_id, sequence, created_at, "
    "state_type, node_name, next_nodes, metadata::text AS metadata, codec, raw_size, checksum, content_hash, "
    "octet_length(state) AS stored_bytes"
)
_SAVE_ONE = "SELECT status, seq, created, head, version FROM cairn_save($1,$2,$3,$4,$5,$6,$7,$8,$9::jsonb,$10,$11,$12,$13,$14,$15,$16,$17)"
_SAVE_MANY = """
SELECT r.status, r.seq, r.created, r.head, r.version
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
            $9::text[], $10::int2[], $11::int4[], $12::int8[], $13::bytea[], $14::bytea[], $15::text[],
            $16::bool[], $17::bool[])
     WITH ORDINALITY AS i(tenant, thread, ns, id, parent, state_type, node, next_json, metadata, codec, raw_size,
                          checksum, hash, state, expected, expect_empty, replace, ord)
CROSS JOIN LATERAL cairn_save(i.tenant, i.thread, i.ns, i.id, i.parent, i.state_type, i.node,
    ARRAY(SELECT jsonb_array_elements_text(i.next_json::jsonb)), i.metadata::jsonb, i.codec, i.raw_size,
    i.checksum, i.hash, i.state, i.expected, i.expect_empty, i.replace) AS r
ORDER BY i.ord
"""
# A delete of many rows locks them first, in key order: batches of saves lock thread heads, and batches of
# PutWrites their checkpoints, in the same order (tiered.py sorts them by key: code-point order, which on
# UTF-8 is what COLLATE "C" gives). Without it, a batch and a delete could each wait for the other, and Postgres
# breaks such a deadlock only after deadlock_timeout (1 s), failing one side with UNAVAILABLE.
_THREAD_ORDER = 'c.tenant COLLATE "C", c.thread_id COLLATE "C", c.namespace COLLATE "C"'  # of rows aliased c
_LOCK_HEADS = f"SELECT 1 FROM cairn_threads c WHERE c.tenant=$1 AND c.thread_id=$2 ORDER BY {_THREAD_ORDER} FOR UPDATE"
_OF_THREAD = "FROM cairn_checkpoints c WHERE c.tenant = $1 AND c.thread_id = $2"
_DELETE_KEYS = (
    "DELETE FROM cairn_checkpoints c USING unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS k(t, th, ns, id) "
    "WHERE c.tenant = k.t AND c.thread_id = k.th AND c.namespace = k.ns AND c.checkpoint_id = k.id"
)
# Of checkpoints `c`: created before {cutoff} and not their namespace's head (retention by age).
_EXPIRED = (
    "c.created_at < {cutoff} AND c.sequence < (SELECT max(h.sequence) FROM cairn_checkpoints h "
    "WHERE h.tenant = c.tenant AND h.thread_id = c.thread_id AND h.namespace = c.namespace)"
)
_WRITES_OF = (
    "SELECT thread_id, namespace, checkpoint_id, task_id, task_path, idx, channel, value_type, value "
    "FROM cairn_writes WHERE tenant=$1 AND thread_id=$2 AND namespace=$3 AND checkpoint_id=$4 "
    "ORDER BY task_path, task_id, idx"
)

# What freshness.py needs before a read, in one snapshot: each thread's versions, and a head where asked for.
_VERSIONS = "SELECT version, clobbered, head FROM cairn_versions_of($1::text[], $2::text[], $3::text[], $4::bool[])"

# Exceptions that mean "the database is not reachable or not answering now".
_UNREACHABLE = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.QueryCanceledError,
    asyncpg.AdminShutdownError,
)


def _row_to_checkpoint(r: Any, with_state: bool) -> StoredCheckpoint:
    return checkpoint_from_row(r, with_state, r["created_at"], list(r["next_nodes"]))


def _outcome(r: Any) -> SaveOutcome:
    return SaveOutcome(SaveStatus(r["status"]), r["seq"] or 0, r["created"], r["head"] or "", r["version"] or 0)


def _primary_only(dsn: str) -> str:
    """The target_session_attrs to connect with: a DSN may name read-write or primary (the default: read-write),
    nothing that admits a standby."""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(dsn).query) if "://" in dsn else {}
    asked = query.get("target_session_attrs", ["read-write"])[-1]
    if asked not in ("read-write", "primary"):
        raise ValueError(
            f"--postgres-dsn asks for target_session_attrs={asked}, which admits a standby: Cairn reads and writes "
            "the primary only (a standby may lag behind deletes); use read-write or primary"
        )
    return asked


@contextlib.contextmanager
def _backend_errors() -> Iterator[None]:
    """Maps a Postgres failure to the store's errors, once, for every way the store talks to Postgres."""
    try:
        yield
    except CairnError:
        raise
    except asyncpg.UniqueViolationError as exc:
        raise TargetNotEmpty(f"the target already holds these rows: {exc.detail or exc}") from exc
    except asyncpg.ForeignKeyViolationError as exc:
        raise InvalidArgument("checkpoint_id", f"the checkpoint no longer exists: {exc.detail or exc}") from exc
    except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError) as exc:
        raise Unavailable(f"Postgres aborted the transaction under contention ({exc}); retry") from exc
    except _UNREACHABLE as exc:
        raise Unavailable(f"Postgres is unreachable or not answering: {exc or type(exc).__name__}") from exc
    except asyncpg.InvalidSQLStatementNameError as exc:  # 26000: a prepared statement vanished
        raise Unavailable(
            f"Postgres lost a prepared statement ({exc}): is it behind a pooler in transaction mode "
            "(pgbouncer pool_mode = transaction)? Start Cairn with --postgres-statement-cache-size 0"
        ) from exc
    except asyncpg.DataError as exc:  # SQLSTATE class 22: a value Postgres will not store; retrying won't help
        raise InvalidArgument("request", f"Postgres rejected a value ({exc.sqlstate}): {exc}") from exc
    except asyncpg.PostgresError as exc:
        raise Unavailable(f"Postgres failed ({exc.sqlstate}): {exc}") from exc


async def _no_reset(conn: asyncpg.Connection) -> None:
    return None


log = logging.getLogger("cairn.postgres")

# Until a table is first analyzed (autovacuum's first look can be a minute away), Postgres plans without
# statistics, and answers cairn_save's primary-key lookup from cairn_checkpoints_thread_row: it reads every
# checkpoint of the thread, so saves slow down as threads grow. After this many saves the store analyzes the
# checkpoint tables if nothing has yet, and cairn_writes likewise after this many writes: analyzed while still
# empty, it had PutWrites' conflict check scan the whole table (943 -> 532 PutWrites/s within 8 s, 79 M rows read).
ANALYZE_AFTER_SAVES = 500
ANALYZE_AFTER_WRITES = 500


class HeldConnection:
    """One pooled connection kept out of the pool for one hot kind of statement (the versions every read asks
    first; the group commit's saves): a pool acquire and release per statement costs the server ~100 us of CPU,
    as much as a small statement itself. Used by one caller at a time (`busy()` tells a caller that would rather
    go to the pool than wait). Given back to the pool after IDLE_SECONDS unused, so idle servers keep no more
    connections than they did without it."""

    IDLE_SECONDS = 10.0

    def __init__(self, pool: asyncpg.Pool, timeout: float) -> None:
        self.pool = pool
        self.timeout = timeout
        self.conn: asyncpg.Connection | None = None
        self.lock = asyncio.Lock()
        self._idle: asyncio.TimerHandle | None = None
        self._returning: asyncio.Task[None] | None = None  # kept: the loop holds tasks only weakly

    @contextlib.asynccontextmanager
    async def use(self) -> AsyncIterator[asyncpg.Connection]:
        """The held connection (waiting while another caller has it); backend failures become the store's
        errors, and a connection a failure or a cancellation left mid-protocol is closed, not kept."""
        async with self.lock:
            with _backend_errors():
                try:
                    if self.conn is None:
                        self.conn = await self.pool.acquire(timeout=self.timeout)
                    yield self.conn
                except BaseException:
                    await self.drop()
                    raise
            if self._idle is not None:
                self._idle.cancel()
            self._idle = asyncio.get_running_loop().call_later(self.IDLE_SECONDS, self._return_if_idle)

    def busy(self) -> bool:
        return self.lock.locked()

    def _return_if_idle(self) -> None:
        self._idle = None
        if self.conn is not None and not self.lock.locked():
            self._returning = asyncio.get_running_loop().create_task(self._return_unused())

    async def _return_unused(self) -> None:
        async with self.lock:
            if self._idle is None:  # nobody used it since the timer fired
                await self.release()

    async def drop(self) -> None:
        """Gives the connection back to the pool, closed: after a failure its protocol state is unknown."""
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.terminate()
            await self.pool.release(conn)

    async def release(self) -> None:
        """Gives the connection back to the pool as it is (pool.close() waits for every held connection)."""
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        conn, self.conn = self.conn, None
        if conn is not None:
            await self.pool.release(conn)


class PostgresColdStore:
    """ColdStore on Postgres through an asyncpg pool."""

    name = "postgres"

    def __init__(self, pool: asyncpg.Pool, timeout_seconds: float, pool_size: int = 10) -> None:
        self.pool = pool
        self.timeout = timeout_seconds
        # Leave connections for reads while saves are being group-committed.
        self.max_inflight = max(1, pool_size - 2)
        # tables -> rows still to be stored before they are checked for statistics (_analyze_after)
        self._rows_before_stats_check: dict[tuple[str, ...], int] = {
            ("cairn_checkpoints", "cairn_threads"): ANALYZE_AFTER_SAVES, ("cairn_writes",): ANALYZE_AFTER_WRITES,
        }
        self._stats_checks: list[asyncio.Task[None]] = []
        self._versions = HeldConnection(pool, timeout_seconds)  # every read's versions query
        # the group commit's transactions, when the pool leaves at least two connections for everything else
        self._saves = HeldConnection(pool, timeout_seconds) if pool_size >= 4 else None

    @classmethod
    async def open(
        cls, dsn: str, *, pool_size: int = 10, timeout_seconds: float = 5.0, migrate: bool = True,
        statement_cache_size: int = 100,
    ) -> PostgresColdStore:
        """A pooled store on `dsn`. statement_cache_size=0 behind pgbouncer in transaction mode: asyncpg then
        prepares no named statement that a later transaction, on another server connection, would not find."""
        try:
            pool = await asyncpg.create_pool(
                dsn,
                # Reads and writes go to a primary only: a standby may lag, and a read it answered would put a
                # checkpoint already deleted on the primary back into the caches. A multi-host DSN finds the primary.
                target_session_attrs=_primary_only(dsn),
                min_size=1,
                max_size=pool_size,
                timeout=timeout_seconds,
                command_timeout=timeout_seconds,
                max_inactive_connection_lifetime=60,
                # Cairn never changes session state (no SET, LISTEN or session locks; transactions are scoped),
                # so asyncpg's RESET ALL on every release would be a round trip for nothing.
                reset=_no_reset,
                statement_cache_size=statement_cache_size,
            )
        except asyncpg.TargetServerAttributeNotMatched as exc:
            raise Unavailable(
                "no host of --postgres-dsn accepts writes (each is a standby or read-only); point it at the primary"
            ) from exc
        except _UNREACHABLE as exc:
            raise Unavailable(f"cannot connect to Postgres: {exc}") from exc
        store = cls(pool, timeout_seconds, pool_size)
        if migrate:
            await store.migrate()
        return store

    @asynccontextmanager
    async def _conn(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; backend failures become Unavailable here, once."""
        with _backend_errors():
            async with self.pool.acquire(timeout=self.timeout) as conn:
                try:
                    yield conn
                except (asyncio.CancelledError, asyncpg.InternalClientError, asyncpg.InterfaceError):
                    # A call cancelled mid-query (client deadline) leaves the protocol mid-operation;
                    # returned to the pool, it would fail the next caller. Drop it instead.
                    conn.terminate()
                    raise

    async def migrate(self) -> None:
        async with self._conn() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('cairn_migrate'))")
            await conn.execute("CREATE TABLE IF NOT EXISTS cairn_schema_version (version integer NOT NULL)")
            version = await conn.fetchval("SELECT max(version) FROM cairn_schema_version") or 0
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                await conn.execute(script)
                await conn.execute("INSERT INTO cairn_schema_version (version) VALUES ($1)", number)
            await migrate_runs(conn)

    # -- writes -------------------------------------------------------------

    async def save(self, items: list[SaveItem], tx: asyncpg.Connection | None = None) -> list[SaveOutcome]:
        """`tx`: a connection in a transaction the caller holds (runs_postgres.fenced_save)."""
        if tx is None and any(item.lease is not None for item in items):
            return await fenced_save(self, items)  # the run-lease check and the save in one transaction
        self._analyze_after(("cairn_checkpoints", "cairn_threads"), len(items))
        # One statement, one implicit transaction: the group commit's usual one at a time goes over the held
        # connection; a save that finds it busy (--commit-concurrency above 1) takes one from the pool.
        if tx is not None:
            conn_scope = borrowed(tx)
        else:
            conn_scope = self._conn() if self._saves is None or self._saves.busy() else self._saves.use()
        async with conn_scope as conn:
            if len(items) == 1:
                item = items[0]
                cp = item.checkpoint
                row = await conn.fetchrow(
                    _SAVE_ONE,
                    cp.tenant, cp.thread_id, cp.namespace, cp.checkpoint_id, cp.parent_checkpoint_id,
                    cp.state_type, cp.node_name, cp.next_nodes, cp.metadata_json, cp.codec, cp.raw_size,
                    cp.checksum, cp.content_hash, cp.state, item.expected_head_id, item.expect_empty,
                    item.replace_existing,
                    timeout=self.timeout,
                )
                return [_outcome(row)]
            cols: list[list[Any]] = [[] for _ in range(17)]
            for item in items:
                cp = item.checkpoint
                values = (
                    cp.tenant, cp.thread_id, cp.namespace, cp.checkpoint_id, cp.parent_checkpoint_id,
                    cp.state_type, cp.node_name, json.dumps(cp.next_nodes), cp.metadata_json, cp.codec,
                    cp.raw_size, cp.checksum, cp.content_hash, cp.state, item.expected_head_id,
                    item.expect_empty, item.replace_existing,
                )
                for col, value in zip(cols, values, strict=True):
                    col.append(value)
            # One statement is one (implicit) transaction: asyncpg returns its rows only at ReadyForQuery, after
            # the commit, and an error rolls back every item. BEGIN/COMMIT would add two round trips.
            rows = await conn.fetch(_SAVE_MANY, *cols, timeout=self.timeout)
            return [_outcome(r) for r in rows]

    async def put_writes_many(
        self, items: list[WritesItem], tx: asyncpg.Connection | None = None
    ) -> list[int | CairnError]:
        """`tx`: a connection in a transaction the caller holds (runs_postgres.fenced_put_writes)."""
        if tx is None and any(item.lease is not None for item in items):
            return await fenced_put_writes(self, items)  # the run-lease check and the writes in one transaction
        self._analyze_after(("cairn_writes",), sum(len(item.writes) for item in items))
        cols: list[list[Any]] = [[] for _ in range(10)]
        idx: list[int] = []
        channel: list[str] = []
        value_type: list[str] = []
        value: list[bytes] = []
        for item in items:
            key = "\x00".join((item.tenant, item.thread_id, item.namespace, item.checkpoint_id, item.task_id))
            lock = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)
            row = (lock, item.tenant, item.thread_id, item.namespace, item.checkpoint_id, item.task_id,
                   item.task_path, item.replace, len(idx) + 1, len(item.writes))
            for col, v in zip(cols, row, strict=True):
                col.append(v)
            for w in item.writes:
                idx.append(w.idx)
                channel.append(w.channel)
                value_type.append(w.value_type)
                value.append(w.value)
        async with self._conn() if tx is None else borrowed(tx) as conn:
            rows = await conn.fetch(
                "SELECT status, written, conflict_idx FROM cairn_put_writes_many("
                "$1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)",
                *cols, idx, channel, value_type, value, timeout=self.timeout,
            )
        out: list[int | CairnError] = []
        for item, r in zip(items, rows, strict=True):
            if r["status"] == "missing":
                out.append(missing_checkpoint(item.thread_id, item.namespace, item.checkpoint_id))
            elif r["status"] == "conflict":
                out.append(write_conflict(next(w for w in item.writes if w.idx == r["conflict_idx"])))
            else:
                out.append(int(r["written"]))
        return out

    async def delete(self, tenant: str, thread_id: str, namespace: str, checkpoint_id: str) -> bool:
        async with self._conn() as conn, conn.transaction():
            await self._lock_threads(conn, tenant, [thread_id])
            status = await conn.execute(
                "DELETE FROM cairn_checkpoints WHERE tenant=$1 AND thread_id=$2 AND namespace=$3 AND checkpoint_id=$4",
                tenant, thread_id, namespace, checkpoint_id, timeout=self.timeout,
            )
            if status == "DELETE 0":
                return False
            await self._clobbered(conn, tenant, [thread_id])
            return True

    async def _lock_threads(self, conn: asyncpg.Connection, tenant: str, thread_ids: list[str]) -> None:
        """Lock the threads (freshness.py), in the order every writer takes them, in the caller's transaction."""
        await conn.execute(
            'SELECT cairn_lock_thread($1, t) FROM unnest($2::text[]) AS t ORDER BY t COLLATE "C"',
            tenant, list(thread_ids), timeout=self.timeout,
        )

    async def _clobbered(self, conn: asyncpg.Connection, tenant: str, thread_ids: list[str]) -> None:
        """Record that the locked threads' existing checkpoints changed (freshness.py)."""
        await conn.execute(
            "SELECT cairn_bump($1, t, true) FROM unnest($2::text[]) AS t", tenant, list(thread_ids),
            timeout=self.timeout,
        )

    async def _delete_in_key_order(self, conn: asyncpg.Connection, rows: str, *args: Any) -> list[Any]:
        """Deletes the checkpoints `c` of `rows` ("FROM ... c ..."), having locked them in key order first (in the
        caller's transaction, which has locked their threads); returns their keys."""
        keys = await conn.fetch(
            f"SELECT c.tenant, c.thread_id, c.namespace, c.checkpoint_id {rows} "
            f'ORDER BY {_THREAD_ORDER}, c.checkpoint_id COLLATE "C" FOR UPDATE OF c',
            *args, timeout=self.timeout,
        )
        if keys:
            await conn.execute(_DELETE_KEYS, *(list(column) for column in zip(*keys)), timeout=self.timeout)
        return keys

    async def clear(self, tenant: str, thread_id: str) -> int:
        async with self._conn() as conn, conn.transaction():
            await self._lock_threads(conn, tenant, [thread_id])
            return await self._clear(conn, tenant, thread_id)

    async def _clear(self, conn: asyncpg.Connection, tenant: str, thread_id: str) -> int:
        """A locked thread's heads, then its checkpoints (the order a save takes them), locked and deleted."""
        await conn.execute(_LOCK_HEADS, tenant, thread_id, timeout=self.timeout)
        removed = len(await self._delete_in_key_order(conn, _OF_THREAD, tenant, thread_id))
        await conn.execute(
            "DELETE FROM cairn_threads WHERE tenant=$1 AND thread_id=$2", tenant, thread_id, timeout=self.timeout
        )
        await self._clobbered(conn, tenant, [thread_id])
        return removed

    async def copy_thread(self, tenant: str, source: str, target: str, reseal: Any = None) -> int:
        async with self._conn() as conn, conn.transaction():
            # The lock every writer of a thread takes first, on both threads: a save to the target cannot slip in
            # between the check and the copy, and no change to the source can commit between the copy's read of
            # it and the copy's commit (else a reader could see the target still empty after a delete in the
            # source that the copy then undoes).
            await self._lock_threads(conn, tenant, sorted({source, target}))
            if await conn.fetchval(
                "SELECT 1 FROM cairn_checkpoints WHERE tenant=$1 AND thread_id=$2 LIMIT 1", tenant, target,
                timeout=self.timeout,
            ):
                raise TargetNotEmpty(
                    f"target thread {target!r} already has checkpoints; clear it first or copy into a new thread id"
                )
            status = await conn.execute(
                "INSERT INTO cairn_checkpoints (tenant, thread_id, namespace, checkpoint_id, parent_checkpoint_id, "
                "sequence, created_at, state_type, node_name, next_nodes, metadata, codec, raw_size, checksum, "
                "content_hash, state) SELECT tenant, $3, namespace, checkpoint_id, parent_checkpoint_id, sequence, "
                "created_at, state_type, node_name, next_nodes, metadata, codec, raw_size, checksum, content_hash, "
                "state FROM cairn_checkpoints WHERE tenant=$1 AND thread_id=$2 ORDER BY row_id",
                tenant, source, target, timeout=self.timeout,
            )
            await conn.execute(
                "INSERT INTO cairn_writes SELECT tenant, $3, namespace, checkpoint_id, task_id, idx, task_path, "
                "channel, value_type, value FROM cairn_writes WHERE tenant=$1 AND thread_id=$2",
                tenant, source, target, timeout=self.timeout,
            )
            # A target emptied by Delete keeps its heads' last sequences: the next save must still go past the
            # copied head's.
            await conn.execute(
                "INSERT INTO cairn_threads AS t SELECT tenant, $3, namespace, last_sequence, now() FROM cairn_threads "
                "WHERE tenant=$1 AND thread_id=$2 ON CONFLICT (tenant, thread_id, namespace) DO UPDATE SET "
                "last_sequence = greatest(t.last_sequence, excluded.last_sequence), updated_at = excluded.updated_at",
                tenant, source, target, timeout=self.timeout,
            )
            if reseal is not None:
                rows = await conn.fetch(
                    "SELECT namespace, checkpoint_id, codec, state FROM cairn_checkpoints WHERE tenant=$1 AND "
                    "thread_id=$2", tenant, target, timeout=self.timeout,
                )
                await conn.executemany(
                    "UPDATE cairn_checkpoints SET state=$5 WHERE tenant=$1 AND thread_id=$2 AND namespace=$3 "
                    "AND checkpoint_id=$4",
                    [(tenant, target, r[0], r[1], reseal(r[0], r[1], r[2], bytes(r[3]))) for r in rows],
                    timeout=self.timeout,
                )
                writes = await conn.fetch(
                    "SELECT namespace, checkpoint_id, task_id, idx, value FROM cairn_writes WHERE tenant=$1 AND "
                    "thread_id=$2", tenant, target, timeout=self.timeout,
                )
                await conn.executemany(
                    "UPDATE cairn_writes SET value=$7 WHERE tenant=$1 AND thread_id=$2 AND namespace=$3 "
                    "AND checkpoint_id=$4 AND task_id=$5 AND idx=$6",
                    [(tenant, target, *w[:4], reseal(w[0], w[1], None, bytes(w[4]), (w[2], w[3]))) for w in writes],
                    timeout=self.timeout,
                )
            await self._clobbered(conn, tenant, [target])
            return int(status.split()[-1])

    async def prune(self, tenant: str, thread_ids: list[str], keep: int | None) -> int:
        removed = 0
        # One transaction per thread, locking only that thread; counts the rows really deleted.
        for thread_id in sorted(set(thread_ids)):
            async with self._conn() as conn, conn.transaction():
                await self._lock_threads(conn, tenant, [thread_id])
                if keep is None:
                    removed += await self._clear(conn, tenant, thread_id)
                    continue
                # Rows named by (namespace, checkpoint_id): row_id is not unique where a distributed database
                # hands it out from per-node ranges.
                rows = await conn.fetch(
                    "SELECT namespace, checkpoint_id, parent_checkpoint_id FROM cairn_checkpoints "
                    "WHERE tenant=$1 AND thread_id=$2 ORDER BY namespace, sequence DESC",
                    tenant, thread_id, timeout=self.timeout,
                )
                doomed = outside_head_chains([((r[0], r[1]), *r) for r in rows], keep)
                if doomed:
                    keys = await self._delete_in_key_order(
                        conn, _OF_THREAD + " AND (c.namespace, c.checkpoint_id) IN "
                        "(SELECT * FROM unnest($3::text[], $4::text[]))",
                        tenant, thread_id, [ns for ns, _ in doomed], [cid for _, cid in doomed],
                    )
                    await self._clobbered(conn, tenant, [thread_id])
                    removed += len(keys)
        return removed

    async def delete_runs(self, tenant: str, run_ids: list[str]) -> tuple[int, set[str]]:
        runs = "FROM unnest($2::text[]) AS r(run_id) JOIN cairn_checkpoints c " \
               "ON c.tenant = $1 AND c.metadata @> jsonb_build_object('run_id', r.run_id)"
        async with self._conn() as conn:
            threads = sorted(r["thread_id"] for r in await conn.fetch(
                f"SELECT DISTINCT c.thread_id {runs}", tenant, sorted(set(run_ids)), timeout=self.timeout
            ))
        removed, touched = 0, set()
        # One transaction per thread, each locking only its own thread (what a database distributed by thread
        # can run on one node): a checkpoint of the runs saved to another thread since is left alone.
        for thread_id in threads:
            async with self._conn() as conn, conn.transaction():
                await self._lock_threads(conn, tenant, [thread_id])
                keys = await self._delete_in_key_order(
                    conn, runs + " AND c.thread_id = $3", tenant, sorted(set(run_ids)), thread_id
                )
                if keys:
                    await self._clobbered(conn, tenant, [thread_id])
                    removed += len(keys)
                    touched.add(thread_id)
        return removed, touched

    # -- retention (retention.py) ----------------------------------------------

    async def retention_lease(self, job: str, holder: str, ttl_seconds: float) -> RetentionCursor | None:
        """Take or renew the lease on `job` for `holder` (one runner per cluster): its cursors, or None while
        another holder's lease has not expired. A row, not an advisory lock: it holds behind pgbouncer."""
        async with self._conn() as conn, conn.transaction():
            await conn.execute("INSERT INTO cairn_retention (job) VALUES ($1) ON CONFLICT DO NOTHING", job,
                               timeout=self.timeout)
            row = await conn.fetchrow(
                "UPDATE cairn_retention SET holder = $2, expires_at = now() + make_interval(secs => $3) "
                "WHERE job = $1 AND (holder = $2 OR expires_at < now()) "
                "RETURNING version_cursor, tenant_cursor, thread_cursor",
                job, holder, ttl_seconds, timeout=self.timeout,
            )
        return None if row is None else RetentionCursor(row[0], (row[1], row[2]))

    async def retention_advance(self, job: str, holder: str, cursor: RetentionCursor, ttl_seconds: float) -> bool:
        """Store the cursors of `job` and renew its lease if `holder` still holds it; False if it lost it."""
        async with self._conn() as conn:
            status = await conn.execute(
                "UPDATE cairn_retention SET version_cursor = $3, tenant_cursor = $4, thread_cursor = $5, "
                "expires_at = now() + make_interval(secs => $6) WHERE job = $1 AND holder = $2 AND expires_at >= now()",
                job, holder, cursor.version, *cursor.thread, ttl_seconds, timeout=self.timeout,
            )
        return status == "UPDATE 1"

    async def retention_release(self, job: str, holder: str) -> None:
        """Give up the lease on `job` (a clean shutdown), so another runner need not wait for it to expire."""
        async with self._conn() as conn:
            await conn.execute(
                "UPDATE cairn_retention SET expires_at = '-infinity' WHERE job = $1 AND holder = $2",
                job, holder, timeout=self.timeout,
            )

    async def threads_changed(self, after_version: int, max_per_head: int, limit: int
                              ) -> tuple[int, list[tuple[str, str]]]:
        """Of the next `limit` threads changed after version `after_version` (cairn_versions), those with a
        namespace holding more than max_per_head checkpoints; and the version up to which it looked."""
        async with self._conn() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            changed = await conn.fetch(
                "SELECT tenant, thread_id, version FROM cairn_versions WHERE version > $1 ORDER BY version LIMIT $2",
                after_version, limit, timeout=self.timeout,
            )
            if not changed:
                return after_version, []
            over = await conn.fetch(
                "SELECT k.t, k.th FROM unnest($1::text[], $2::text[]) AS k(t, th) WHERE EXISTS ("
                "SELECT 1 FROM cairn_checkpoints c WHERE c.tenant = k.t AND c.thread_id = k.th "
                "GROUP BY c.namespace HAVING count(*) > $3)",
                [r[0] for r in changed], [r[1] for r in changed], max_per_head, timeout=self.timeout,
            )
        return changed[-1][2], [(r[0], r[1]) for r in over]

    async def threads_after(self, after: tuple[str, str], cutoff: datetime, limit: int
                            ) -> tuple[tuple[str, str] | None, list[tuple[str, str]]]:
        """Of the next `limit` threads after `after` in (tenant, thread_id) order, those with a checkpoint created
        before cutoff that is not its namespace's head; and the last thread looked at (None: no more threads)."""
        async with self._conn() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            # The database's collation, as the primary key's index has it: a range scan of that index.
            batch = await conn.fetch(
                "SELECT tenant, thread_id FROM cairn_versions WHERE (tenant, thread_id) > ($1, $2) "
                "ORDER BY tenant, thread_id LIMIT $3",
                after[0], after[1], limit, timeout=self.timeout,
            )
            if not batch:
                return None, []
            old = await conn.fetch(
                "SELECT k.t, k.th FROM unnest($1::text[], $2::text[]) AS k(t, th) WHERE EXISTS ("
                "SELECT 1 FROM cairn_checkpoints c WHERE c.tenant = k.t AND c.thread_id = k.th AND "
                + _EXPIRED.format(cutoff="$3") + ")",
                [r[0] for r in batch], [r[1] for r in batch], cutoff, timeout=self.timeout,
            )
        return (batch[-1][0], batch[-1][1]), [(r[0], r[1]) for r in old]

    async def delete_older_than(self, tenant: str, thread_id: str, cutoff: datetime) -> int:
        """Delete one thread's checkpoints created before cutoff, never a namespace's head (the highest sequence);
        how many went. Locks that thread only."""
        async with self._conn() as conn, conn.transaction():
            await self._lock_threads(conn, tenant, [thread_id])
            keys = await self._delete_in_key_order(
                conn, _OF_THREAD + " AND " + _EXPIRED.format(cutoff="$3"), tenant, thread_id, cutoff
            )
            if keys:
                await self._clobbered(conn, tenant, [thread_id])
            return len(keys)

    # -- reads --------------------------------------------------------------

    async def versions(self, keys: list[VersionKey]) -> list[ThreadVersion]:
        # Every read asks this before it is served, so it skips the pool (HeldConnection).
        async with self._versions.use() as conn:
            rows = await conn.fetch(_VERSIONS, *(list(column) for column in zip(*keys)), timeout=self.timeout)
        return [ThreadVersion(r["version"], r["clobbered"], r["head"]) for r in rows]

    async def load(
        self, tenant: str, thread_id: str, namespace: str, checkpoint_id: str | None
    ) -> tuple[StoredCheckpoint, list[StoredWrite]] | None:
        # One snapshot for the row and its writes: read apart, a head could come back with writes added after
        # a newer head was saved, a state no moment of the thread ever had.
        async with self._conn() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            if checkpoint_id:
                row = await conn.fetchrow(
                    f"SELECT {_COLS}, state FROM cairn_checkpoints WHERE tenant=$1 AND thread_id=$2 "
                    "AND namespace=$3 AND checkpoint_id=$4",
                    tenant, thread_id, namespace, checkpoint_id, timeout=self.timeout,
                )
            else:
                row = await conn.fetchrow(
                    f"SELECT {_COLS}, state FROM cairn_checkpoints WHERE tenant=$1 AND thread_id=$2 "
                    "AND namespace=$3 ORDER BY sequence DESC LIMIT 1",
                    tenant, thread_id, namespace, timeout=self.timeout,
                )
            if row is None:
                return None
            cp = _row_to_checkpoint(row, with_state=True)
            writes = await conn.fetch(_WRITES_OF, tenant, thread_id, namespace, cp.checkpoint_id, timeout=self.timeout)
            return cp, [write_from_row(w) for w in writes]

    async def dictionaries(self) -> list[tuple[int, bytes]]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT dict_id, data FROM cairn_dictionaries ORDER BY created_at, dict_id", timeout=self.timeout
            )
        return [(r["dict_id"], bytes(r["data"])) for r in rows]

    async def add_dictionary(self, dict_id: int, data: bytes, samples: int) -> None:
        async with self._conn() as conn:
            await conn.execute(
                "INSERT INTO cairn_dictionaries (dict_id, samples, data) VALUES ($1, $2, $3)", dict_id, samples, data,
                timeout=self.timeout,
            )

    async def recent_states(self, limit: int) -> list[StoredCheckpoint]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                f"SELECT {_COLS}, state FROM cairn_checkpoints ORDER BY row_id DESC LIMIT $1", limit,
                timeout=self.timeout,
            )
        return [_row_to_checkpoint(r, True) for r in rows]

    async def row_id_of(self, tenant: str, thread_id: str, namespace: str | None, checkpoint_id: str) -> int | None:
        sql = "SELECT max(row_id) FROM cairn_checkpoints WHERE tenant=$1 AND checkpoint_id=$2"
        args: list[Any] = [tenant, checkpoint_id]
        if thread_id:
            args.append(thread_id)
            sql += f" AND thread_id=${len(args)}"
        if namespace is not None:
            args.append(namespace)
            sql += f" AND namespace=${len(args)}"
        async with self._conn() as conn:
            return await conn.fetchval(sql, *args, timeout=self.timeout)

    async def list_checkpoints(self, query: ListQuery) -> tuple[list[StoredCheckpoint], list[StoredWrite]]:
        budgeted = query.include_state and query.max_bytes > 0  # states fetched below, within the budget
        cols = _COLS + (", state" if query.include_state and not budgeted else "")
        args: list[Any] = [query.tenant]
        if query.thread_id:
            args.append(query.thread_id)
            sql = f"SELECT {cols} FROM cairn_checkpoints WHERE tenant=$1 AND thread_id=${len(args)}"
        else:
            sql = f"SELECT {cols} FROM cairn_checkpoints WHERE {_TENANT_FEED} = $1"
        if query.namespace is not None:
            args.append(query.namespace)
            sql += f" AND namespace=${len(args)}"
        for bound in (query.before_row_id, query.after_row_id):
            if bound is not None:
                args.append(bound)
                sql += f" AND row_id < ${len(args)}"
        if query.metadata_filter_json is not None:
            args.append(query.metadata_filter_json)
            sql += f" AND metadata @> ${len(args)}::jsonb"
        args.append(query.limit)
        sql += f" ORDER BY row_id DESC LIMIT ${len(args)}"
        async with self._conn() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            rows = [_row_to_checkpoint(r, query.include_state and not budgeted)
                    for r in await conn.fetch(sql, *args, timeout=self.timeout)]
            if budgeted:
                await self._fetch_states_within(conn, query, rows)
            writes: list[StoredWrite] = []
            if query.include_writes and rows:
                found = await conn.fetch(
                    "SELECT w.thread_id, w.namespace, w.checkpoint_id, w.task_id, w.task_path, w.idx, w.channel, "
                    "w.value_type, w.value FROM cairn_writes w JOIN unnest($2::text[], $3::text[], $4::text[]) "
                    "AS k(thread_id, namespace, checkpoint_id) USING (thread_id, namespace, checkpoint_id) "
                    "WHERE w.tenant=$1 ORDER BY w.task_path, w.task_id, w.idx",
                    query.tenant,
                    [r.thread_id for r in rows if not r.state_omitted],
                    [r.namespace for r in rows if not r.state_omitted],
                    [r.checkpoint_id for r in rows if not r.state_omitted],
                    timeout=self.timeout,
                )
                writes = [write_from_row(w) for w in found]
            return rows, writes

    async def _fetch_states_within(
        self, conn: asyncpg.Connection, query: ListQuery, rows: list[StoredCheckpoint]
    ) -> None:
        """The states of the rows within the List's byte budget, in one query; the rest are marked omitted."""
        kept = within_budget(rows, query.max_bytes)
        # By key, not row_id: a distributed database may hand the same row_id to two nodes' rows.
        found = {(r[0], r[1], r[2]): r[3] for r in await conn.fetch(
            "SELECT c.thread_id, c.namespace, c.checkpoint_id, c.state FROM cairn_checkpoints c "
            "JOIN unnest($2::text[], $3::text[], $4::text[]) AS k(th, ns, id) ON c.tenant = $1 "
            "AND c.thread_id = k.th AND c.namespace = k.ns AND c.checkpoint_id = k.id",
            query.tenant, [cp.thread_id for cp in rows[:kept]], [cp.namespace for cp in rows[:kept]],
            [cp.checkpoint_id for cp in rows[:kept]], timeout=self.timeout,
        )}
        for i, cp in enumerate(rows):
            state = found.get((cp.thread_id, cp.namespace, cp.checkpoint_id)) if i < kept else None
            if state is None:  # past the budget, or deleted meanwhile: the page ends before it
                for rest in rows[i:]:
                    rest.state_omitted = True
                return
            cp.state = bytes(state)

    async def list_threads(
        self, tenant: str, limit: int, after: tuple[datetime, str] | None, metadata_filter_json: str | None
    ) -> list[ThreadSummary]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                """
                SELECT t.thread_id, t.u, h.checkpoint_id, h.metadata::text AS metadata, h.node_name, h.next_nodes,
                       n.count
                FROM (SELECT thread_id, max(updated_at) AS u FROM cairn_threads WHERE tenant = $1
                      GROUP BY thread_id) t
                CROSS JOIN LATERAL (
                    SELECT checkpoint_id, metadata, node_name, next_nodes FROM cairn_checkpoints c
                    WHERE c.tenant = $1 AND c.thread_id = t.thread_id
                    ORDER BY (c.namespace = '') DESC, c.sequence DESC, c.created_at DESC LIMIT 1) h
                CROSS JOIN LATERAL (
                    SELECT count(*) FROM cairn_checkpoints c WHERE c.tenant = $1 AND c.thread_id = t.thread_id) n
                WHERE ($2::timestamptz IS NULL OR t.u < $2 OR (t.u = $2 AND t.thread_id > $3))
                  AND ($4::jsonb IS NULL OR h.metadata @> $4::jsonb)
                ORDER BY t.u DESC, t.thread_id
                LIMIT $5
                """,
                tenant,
                after[0] if after else None,
                after[1] if after else "",
                metadata_filter_json,
                limit,
                timeout=self.timeout,
            )
        return [
            ThreadSummary(
                thread_id=r["thread_id"],
                checkpoint_count=r["count"],
                head_checkpoint_id=r["checkpoint_id"],
                head_metadata_json=r["metadata"],
                updated_at=r["u"],
                head_node_name=r["node_name"],
                head_next_nodes=list(r["next_nodes"]),
            )
            for r in rows
        ]

    def _analyze_after(self, tables: tuple[str, ...], stored: int) -> None:
        """Count `stored` rows toward the tables' check for statistics; start it once their count is reached."""
        left = self._rows_before_stats_check.get(tables)
        if left is None:
            return
        if left > stored:
            self._rows_before_stats_check[tables] = left - stored
            return
        del self._rows_before_stats_check[tables]
        self._stats_checks.append(asyncio.get_running_loop().create_task(self._analyze_if_never_analyzed(tables)))

    async def _analyze_if_never_analyzed(self, tables: tuple[str, ...]) -> None:
        """ANALYZE those of the tables Postgres has no statistics of yet (ANALYZE_AFTER_SAVES, _WRITES). A user
        that does not own the tables gets a warning from Postgres, not an error."""
        try:
            async with self._conn() as conn:
                never = await conn.fetchval(
                    "SELECT array_agg(relname::text ORDER BY relname) FROM pg_stat_user_tables "
                    "WHERE relid = ANY($1::text[]::regclass[]) AND coalesce(last_analyze, last_autoanalyze) IS NULL",
                    list(tables),
                )
                if never:
                    await conn.execute(f"ANALYZE {', '.join(never)}", timeout=300)
                    log.info("analyzed %s: Postgres had no statistics of them yet", ", ".join(never))
        except CairnError as exc:
            log.warning("could not analyze %s (autovacuum will): %s", ", ".join(tables), exc)

    # -- operations: health probe, key registry, quarantine -------------------

    async def ping(self) -> None:
        async with self._conn() as conn:
            await conn.fetchval("SELECT 1", timeout=self.timeout)

    async def key_fingerprints(self, fingerprints: dict[str, bytes]) -> dict[str, bytes]:
        """Record the fingerprints of key ids seen for the first time; return every recorded one."""
        async with self._conn() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO cairn_keys (key_id, fingerprint, created_at) SELECT k, f, now() "
                "FROM unnest($1::text[], $2::bytea[]) AS n(k, f) ON CONFLICT DO NOTHING",
                list(fingerprints), list(fingerprints.values()), timeout=self.timeout,
            )
            rows = await conn.fetch("SELECT key_id, fingerprint FROM cairn_keys", timeout=self.timeout)
            return {r[0]: bytes(r[1]) for r in rows}

    async def quarantine(self, tenant: str, thread_id: str, namespace: str, checkpoint_id: str,
                         reason: str) -> bool:
        """Move one checkpoint (its pending writes go with it) into cairn_quarantine; False if absent."""
        async with self._conn() as conn, conn.transaction():
            await self._lock_threads(conn, tenant, [thread_id])
            where = "tenant=$1 AND thread_id=$2 AND namespace=$3 AND checkpoint_id=$4"
            moved = await conn.execute(
                f"INSERT INTO cairn_quarantine (quarantined_at, reason, {_QUARANTINED}) "
                f"SELECT now(), $5, {_QUARANTINED} FROM cairn_checkpoints WHERE {where}",
                tenant, thread_id, namespace, checkpoint_id, reason, timeout=self.timeout,
            )
            await conn.execute(f"DELETE FROM cairn_checkpoints WHERE {where}", tenant, thread_id, namespace,
                               checkpoint_id, timeout=self.timeout)
            if moved == "INSERT 0 0":
                return False
            await self._clobbered(conn, tenant, [thread_id])
            return True

    async def quarantined(self, limit: int) -> list[dict[str, Any]]:
        """The newest quarantined checkpoints, without their states."""
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT quarantined_at, reason, tenant, thread_id, namespace, checkpoint_id, parent_checkpoint_id, "
                "raw_size, octet_length(state) AS stored_bytes FROM cairn_quarantine "
                "ORDER BY quarantine_id DESC LIMIT $1", limit, timeout=self.timeout,
            )
            return [{**dict(r), "quarantined_at": r["quarantined_at"].isoformat()} for r in rows]

    async def aclose(self) -> None:
        for task in self._stats_checks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._versions.release()
        if self._saves is not None:
            await self._saves.release()
        await self.pool.close()
