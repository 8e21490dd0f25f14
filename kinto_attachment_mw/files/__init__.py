"""Who owns a stored file, and when it may go: the guard that lets a record reference
only a stored file (and notes copies), and the one deletion rule that replacements,
deletes, Kinto's flush and garbage collection all go through (:mod:`.remover`)."""
