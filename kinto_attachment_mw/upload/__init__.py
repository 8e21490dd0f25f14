"""How an upload is parsed and stored: the attachment endpoint (POST and DELETE of
``.../records/{rid}/attachment``), the bounded read of the request body, the streaming
form parser, the new file with its sinks (size, SHA-256, gzip), its stored name."""
