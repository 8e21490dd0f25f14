"""How the middleware talks to Kinto, and to clients as Kinto would: Kinto's URL layout
(:mod:`.paths`, with :class:`~.paths.RecordPath`), the internal client that calls the
wrapped app through its HTTP API (:mod:`.client`), Kinto's error envelope and errnos
(:mod:`.errors`: a new error goes there), and CORS (:mod:`.cors`)."""
