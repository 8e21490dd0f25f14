"""Google Cloud Storage (or its emulators) with google-cloud-storage: the storage itself,
the bucket connection it shares with its writers, and streamed resumable uploads."""

from .storage import GCSStorage

__all__ = ["GCSStorage"]
