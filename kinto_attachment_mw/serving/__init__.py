"""What the middleware answers itself, besides the attachment URLs: the ``attachments``
capability and heartbeat check added to Kinto's own service endpoints, and stored files
served from local storage when no web server stands in front."""
