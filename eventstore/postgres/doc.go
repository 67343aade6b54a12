// Package postgres is the PostgreSQL implementation of eventstore.Store, on
// the table booking_events.
//
// # Appending
//
// Append is one statement, one round trip, and a statement outside a
// transaction block is its own transaction, so a multi-stream append is
// all-or-nothing without BEGIN and COMMIT round trips. The statement reads
// each stream's head (version and hash), checks every expectation, computes
// the SHA-256 chain over booking_events_canonical, inserts the events and
// then records each stream's new head in booking_streams. There are two
// forms of it: one event to one stream with an Exact or NoStream
// expectation, which is what nearly every command appends, is a prepared
// SQL statement; everything else (several events or streams, Any) calls the
// plpgsql function booking_events_append with the events as parallel
// arrays. Both write identical chains. The SQL form costs PostgreSQL about a
// third less, which is what lets Append keep up with a bare INSERT under
// load (see docs/PERFORMANCE.md).
//
// The constraint, not the read, decides between writers: two appends that
// both pass the check meet at the unique (stream_id, stream_version) index,
// where the second waits for the first to commit and then fails with 23505,
// which becomes *eventstore.VersionConflictError (or, for a stream that
// expects Any, a retry). A stale expectation found by the check becomes the
// same error, after the statement has looked, in the same round trip,
// whether the append is a retry whose events are all stored already; then
// the original result comes back with Duplicate set. Writers expecting Any
// queue on a transaction-scoped advisory lock per stream, which takes no
// transaction id, instead of racing each other for the version. Streams
// are written in sorted order so that multi-stream appends cannot deadlock.
//
// # Reading everything: the xid8 watermark
//
// Positions come from an identity sequence, so they are handed out at
// insert time but become visible at commit time: a transaction that took
// position 10 may commit after one that took position 11. A reader that
// resumes after "position 11" would skip 10 for ever. ReadAll therefore
// orders by (transaction_id, position) and returns only rows whose
// transaction_id is below pg_snapshot_xmin(pg_current_snapshot()), the
// oldest transaction id still running in the cluster. Every transaction
// below that watermark has committed or rolled back, so no row can later
// appear before a cursor that was handed out: ReadAll never skips and never
// repeats an event.
//
// The cost: a transaction that holds a transaction id delays every
// read-all reader (projections, the event relay) until it ends; it never
// makes them lose an event. That is why the append's first write must be
// the event insert, and why it checks every expectation before it writes:
// PostgreSQL assigns the transaction id at a transaction's first write, so
// an append that wrote something else first (an idempotency row, say) and
// then did slow work would hold the watermark back for all of that time.
// Append is its own transaction, so its id lives only for the inserts and
// the commit. Keep
// transactions that write to this database short, and never leave one
// idle with an id; this includes transactions in other databases of the
// same cluster, since transaction ids are cluster-wide.
//
// # Integrity
//
// Each event's hash is sha256(previous hash || canonical bytes), computed
// in SQL by the append statement. Verify recomputes the chain with window
// functions in one streamed query and compares each stream's last version
// and hash with booking_streams, so an edited row shows as hash_mismatch, a
// deleted row in the middle or at the start as version_gap, and a deleted
// last row as version_gap at the version the head table names (a chain
// alone cannot show that one: a truncated chain is a valid chain). The
// head row costs each append an upsert, about a tenth of append throughput
// in the benchmarks; it is kept because it is the only way to see
// truncation. The chain detects accidents and naive edits; someone who can
// rewrite both tables can rewrite history undetected, so anchor head
// hashes elsewhere if that matters.
//
// # Schema
//
// Tables: booking_events, booking_streams (heads), booking_snapshots,
// booking_checkpoints, and schema_migrations. Migrate applies the embedded
// files in migrations/ and any extra MigrationSet under an advisory lock;
// see Migrate and MigrationSet for adding tables of other packages.
package postgres
