"""Operating a deployment: the ``kinto-attachment-mw`` command and its garbage collector,
which finds stored files no record references and records whose file is missing."""
