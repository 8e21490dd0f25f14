"""Resumable uploads with the tus 1.0 protocol: a file sent in as many requests as the
client needs, continued by any worker, ending as a multipart upload ends.

``protocol`` (tus's headers and answers), ``spool`` (the unfinished uploads: their state
and bytes), ``endpoint`` (the requests: create, HEAD, PATCH, DELETE, OPTIONS).
"""
