"""Command-line clients of the attachment API: ``kinto-attachment upload|download``.

They need the ``tools`` extra (``pip install kinto-attachment-mw[tools]``); the
middleware itself never imports this package.
"""
