"""Kinto's own writes and deletes that reach attachments (records, collections, buckets,
batches, flush): which requests can affect files, what a write makes of ``attachment``
(simulated with Kinto's patch semantics), and which files to remove once Kinto confirmed."""
