"""S3 storage (Amazon S3 or any S3 API: MinIO, Ceph, moto): the storage itself, the
connection it shares with its writers, streamed multipart uploads and their parts, and
what is kept in each object's user metadata."""

from .storage import S3Storage

__all__ = ["S3Storage"]
