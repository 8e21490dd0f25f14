"""Who may read a file on local disk. Public files and their folders follow the
process's umask (nginx serves them). Private files are the server's own: ``0600`` in
``0700`` folders; with ``kinto.attachment.private_files_group`` (the group nginx's
workers are in, so that ``download_accel_path`` can hand them to nginx) ``0640`` in
``0750`` folders, owned by that group."""

from __future__ import annotations

import os
import stat


class LocalModes:
    def __init__(self, private_gid: int | None = None):
        self.private_gid = private_gid
        group = private_gid is not None
        self.private_file_mode = 0o640 if group else 0o600
        self.private_folder_mode = 0o750 if group else 0o700

    def create_file(self, path: str, private: bool) -> int:
        """A new file's descriptor (``FileExistsError`` if ``path`` exists), opened to
        write, private from its first byte when ``private``."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o666)
        if private:
            try:
                self._own(fd, self.private_file_mode)
            except OSError:
                os.close(fd)
                os.unlink(path)
                raise
        return fd

    def make_folders(self, root: str, folder: str, private: bool) -> None:
        """``folder`` and those between it and ``root``; each private one made (or made
        again, when an older version left it open) the server's alone."""
        if not private:
            os.makedirs(folder, exist_ok=True)
            return
        os.makedirs(folder, mode=0o700, exist_ok=True)
        while folder != root and folder.startswith(root + os.sep):
            status = os.stat(folder, follow_symlinks=False)
            if stat.S_IMODE(status.st_mode) != self.private_folder_mode or (
                self.private_gid is not None and status.st_gid != self.private_gid
            ):
                self._own(folder, self.private_folder_mode)
            folder = os.path.dirname(folder)

    def _own(self, target: int | str, mode: int) -> None:
        if self.private_gid is not None:
            os.chown(target, -1, self.private_gid)
        os.chmod(target, mode)
