"""The files a session needs at another centre, compared by content and carried as a tar stream.

Paths are relative to the user's home at both ends. The source lists the files (size, time,
SHA-256); the target answers which of them it lacks or holds in another version (two centres
that share a filesystem lack nothing, so nothing is copied onto itself); only those travel.
Unpacking refuses any member that is not a regular file inside the home (an absolute path, a
``..``, a link), and writes each file beside its place first, so a cut stream leaves no file
half-written. A file whose SHA-256 the sender named keeps what arrived of it when the stream is
cut (in a hidden partial named after that hash), so the next transfer resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from stat import S_ISREG

LARGEST_FILE = 100 * 1024 * 1024  # a folder's bigger files stay behind (the next issue fetches them on demand)
SHA256_HEADER = "FEDHUB.sha256"    # a carried file's hash, in its tar header
OFFSET_HEADER = "FEDHUB.offset"    # a resumed file: the bytes before this the receiver already holds
MOST_FILES = 2000                  # a folder with more (a dataset) is not carried whole
COPY_BUFFER = 1 << 20              # a file's bytes are copied in blocks this large


class FileRefused(ValueError):
    """A path that is not a plain file inside the home (the message names it)."""


def inside(home: Path, relative: str, what: str = "your home") -> Path:
    """``home / relative``, refused unless it stays inside ``home`` (``what`` names it in the
    refusal) without following a link out."""
    pure = PurePosixPath(relative)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        raise FileRefused(f"{relative!r}: only paths inside {what}, without '..'")
    path = home.joinpath(*pure.parts)
    if not path.resolve().is_relative_to(home.resolve()):
        raise FileRefused(f"{relative!r} leads out of {what} through a link")
    return path


class _Confined:
    """``inside()`` for many paths under one root: each folder's real path is resolved once
    (a tar of 10,000 files in a few folders resolves a few folders, not 10,000 paths)."""

    def __init__(self, home: Path, what: str):
        self.home, self.what, self.root = home, what, home.resolve()
        self.folders: dict[tuple, bool] = {}

    def __call__(self, relative: str) -> Path:
        pure = PurePosixPath(relative)
        if pure.is_absolute() or ".." in pure.parts or not pure.parts:
            raise FileRefused(f"{relative!r}: only paths inside {self.what}, without '..'")
        path = self.home.joinpath(*pure.parts)
        folder = pure.parts[:-1]
        if folder not in self.folders:
            self.folders[folder] = path.parent.resolve().is_relative_to(self.root)
        if not self.folders[folder] or (path.is_symlink() and not path.resolve().is_relative_to(self.root)):
            raise FileRefused(f"{relative!r} leads out of {self.what} through a link")
        return path


class _Counted:
    """A write-only stream that knows its position, so tarfile writes straight to it (its own
    stream mode copies every write into a buffer, which costs more than the files' bytes)."""

    def __init__(self, out):
        self.out, self.position = out, 0

    def write(self, data) -> int:
        self.out.write(data)
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        self.out.flush()


class _Forward:
    """A read-only stream that tarfile may "seek" forward in (by reading on): so it reads a pipe
    as a file, straight from a large buffer, instead of its stream mode's 10 kB blocks joined
    and sliced for every header."""

    def __init__(self, stream):
        self.stream, self.position = stream, 0

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.position += len(data)
        return data

    def fill(self, buffer: memoryview) -> int:
        """Read into ``buffer`` until it is full or the stream ends (no new bytes object per block)."""
        filled = 0
        readinto = getattr(self.stream, "readinto", None)
        while filled < len(buffer):
            if readinto is not None:
                n = readinto(buffer[filled:])
            else:  # a stream that only reads (a continue's pieces, as the event loop receives them)
                data = self.stream.read(len(buffer) - filled)
                n = len(data)
                buffer[filled:filled + n] = data
            if not n:
                break
            filled += n
        self.position += filled
        return filled

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = 0) -> int:
        target = offset if whence == 0 else self.position + offset if whence == 1 else None
        if target is None or target < self.position:
            raise OSError("a stream read once cannot go back")
        while self.position < target and self.read(min(target - self.position, COPY_BUFFER)):
            pass
        return self.position


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def session_paths(home: Path, documents: list[str], extra_dirs: list[str]) -> list[str]:
    """The open documents, the other files of the folders they live in (not sub-folders; none
    larger than LARGEST_FILE, none hidden), and every file of ``extra_dirs`` (the session's
    snapshot, the lab's workspaces): home-relative, each once."""
    chosen: dict[str, None] = {}
    for doc in documents:
        try:
            path = inside(home, doc)
        except FileRefused:
            continue
        if path.is_file():
            chosen[doc] = None
        folder = path.parent
        siblings = sorted(p for p in folder.iterdir() if p.is_file() and not p.is_symlink()
                          and not p.name.startswith(".")) if folder.is_dir() else []
        for p in siblings[:MOST_FILES]:
            if p.stat().st_size <= LARGEST_FILE:
                chosen[str(p.relative_to(home))] = None
    for d in extra_dirs:
        folder = home / d
        if folder.is_dir():
            for p in sorted(folder.iterdir()):
                if p.is_file() and not p.is_symlink():
                    chosen[str(p.relative_to(home))] = None
    return list(chosen)


def listing(home: Path, paths: list[str]) -> list[dict]:
    out = []
    for relative in paths:
        path = inside(home, relative)
        if path.is_file() and not path.is_symlink():
            stat = path.stat()
            out.append({"path": relative, "size": stat.st_size, "mtime": stat.st_mtime, "sha256": sha256_of(path)})
    return out


def lacking(home: Path, files: list[dict]) -> list[str]:
    """Which of the source's files this home does not hold with the same content."""
    out = []
    for f in files:
        path = inside(home, f["path"])
        same = path.is_file() and path.stat().st_size == f["size"] and sha256_of(path) == f["sha256"]
        if not same:
            out.append(f["path"])
    return out


def partial_of(path: Path, sha256: str | None) -> Path:
    """Where a file is written while it arrives (hidden, beside its place): named after its
    SHA-256 when known, so what arrived before a cut is resumed only for the same content."""
    return path.with_name(f".{path.name}.{sha256[:16]}.fedhub-partial" if sha256 else f".{path.name}.fedhub-partial")


def partials(home: Path, expected: dict, what: str = "your home") -> dict:
    """Of ``expected`` ({path: SHA-256}), the bytes already arrived of each by an earlier, cut
    transfer: {path: bytes} (only those with some)."""
    held = {}
    for relative, sha in expected.items():
        if isinstance(sha, str) and sha:
            try:
                size = partial_of(inside(home, relative, what), sha).stat().st_size
            except (FileRefused, OSError):
                continue
            if size:
                held[relative] = size
    return held


def forget_partials(home: Path, expected: dict, what: str = "your home") -> int:
    """Remove what arrived of ``expected``'s files before a cut (a cancelled transfer keeps nothing)."""
    removed = 0
    for relative, sha in expected.items():
        try:
            partial_of(inside(home, relative, what), sha if isinstance(sha, str) else None).unlink()
            removed += 1
        except (FileRefused, OSError):
            continue
    return removed


def write_tar(home: Path, paths: list[str], out, what: str = "your home", known_sha256=None,
              resume: dict | None = None) -> int:
    """Stream the files into ``out`` (a binary file object) as a tar; answers the bytes of data.
    ``known_sha256(relative, stat)``, when given, names a file's SHA-256 if already known (a
    scan's cache): it travels in the member's header, and the receiver checks the bytes against it.
    ``resume`` ({path: [bytes, SHA-256]}): the receiver holds that many bytes of that content, so
    only the rest is sent (when the file still has that content)."""
    total = 0
    resume = resume or {}
    confined = _Confined(home, what)
    with tarfile.open(fileobj=_Counted(out), mode="w", format=tarfile.PAX_FORMAT, copybufsize=COPY_BUFFER) as tar:
        for relative in paths:
            path = confined(relative)
            try:
                stat = os.lstat(path)
            except FileNotFoundError:
                continue
            if not S_ISREG(stat.st_mode):  # a link, a folder, a device: not carried
                continue
            # one lstat, no owner names looked up (tarfile's gettarinfo asks the password database
            # for every file); whole seconds, so a member needs no pax header for its time
            info = tarfile.TarInfo(relative)
            info.size, info.mtime, info.mode = stat.st_size, int(stat.st_mtime), stat.st_mode & 0o7777
            sha = known_sha256(relative, stat) if known_sha256 else None
            offset = 0
            if sha:
                info.pax_headers = {SHA256_HEADER: sha}
                held = resume.get(relative)
                if isinstance(held, list) and len(held) == 2 and held[1] == sha and 0 < held[0] < info.size:
                    offset = int(held[0])
                    info.pax_headers[OFFSET_HEADER] = str(offset)
                    info.size -= offset
            with open(path, "rb") as f:
                f.seek(offset)
                _add(tar, info, f)
            total += info.size
    return total


def _add(tar: tarfile.TarFile, info: tarfile.TarInfo, f) -> None:
    """``tar.addfile(info, f)``, its header made the cheaper ustar way when ustar can say it all
    (no pax header of FedHub's, a short ASCII name), as tarfile's pax format would leave it."""
    name = info.name
    if info.pax_headers or len(name) > 99 or not name.isascii() or info.size >= 8 ** 11:  # ustar's limits
        tar.addfile(info, f)
        return
    header = info.tobuf(tarfile.USTAR_FORMAT)
    tar.fileobj.write(header)
    tar.offset += len(header)
    tarfile.copyfileobj(f, tar.fileobj, info.size, bufsize=COPY_BUFFER)
    blocks, remainder = divmod(info.size, tarfile.BLOCKSIZE)
    if remainder:
        tar.fileobj.write(tarfile.NUL * (tarfile.BLOCKSIZE - remainder))
        blocks += 1
    tar.offset += blocks * tarfile.BLOCKSIZE


def _resumed(partial: Path, offset: int, name: str, digest) -> None:
    """Keep the first ``offset`` bytes of what arrived before (hashing them), or refuse by name."""
    try:
        held = partial.stat().st_size
    except OSError:
        held = 0
    if held < offset:
        raise FileRefused(f"{name!r}: the sender resumed at byte {offset}, but only {held} had arrived here")
    with open(partial, "r+b") as f:
        f.truncate(offset)
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)


def _write(fd: int, block: memoryview) -> None:
    while block:
        block = block[os.write(fd, block):]


def _copy(stream: _Forward, size: int, fd: int, digest, progress, done: int) -> None:
    """A member's ``size`` bytes from the tar stream into ``fd``, hashed on the way, read straight
    into two blocks used in turn (a new 1 MB object per block costs its page faults). A large file
    is hashed in a second thread, a block behind (hashlib lets go of the GIL), so hashing, writing
    and reading the next block overlap."""
    threaded = size >= 4 * COPY_BUFFER
    blocks = [memoryview(bytearray(min(size, COPY_BUFFER))) for _ in range(2 if threaded else 1)]
    hasher = ThreadPoolExecutor(1) if threaded else None
    try:
        hashing, turn, left = None, 0, size
        while left:
            block = blocks[turn][:min(left, COPY_BUFFER)]
            got = stream.fill(block)
            if hashing is not None:
                hashing.result()  # the other block's: it is read into next
            if got < len(block):
                raise tarfile.ReadError("unexpected end of data")  # as tarfile says it: a cut stream
            if hasher is None:
                digest.update(block)
            else:
                hashing = hasher.submit(digest.update, block)
                turn = 1 - turn
            _write(fd, block)
            left, done = left - got, done + got
            if progress is not None:
                progress(done)
        if hashing is not None:
            hashing.result()
    finally:
        if hasher is not None:
            hasher.shutdown()


def read_tar(home: Path, stream, what: str = "your home", arrived: dict | None = None,
             progress=None) -> tuple[int, int]:
    """Unpack a tar stream from ``stream`` into the home: plain files only, each written beside its
    place and renamed when whole (its mode kept, without set-id bits). A file whose bytes differ
    from the SHA-256 its header names is not kept (refused by name); one cut short keeps what
    arrived for a resume when that hash was named. Answers (files, bytes); ``arrived``, when
    given, gets each file's SHA-256; ``progress(bytes)``, when given, is called as blocks arrive."""
    files = size = 0
    confined, made = _Confined(home, what), set()
    reader = io.BufferedReader(stream, COPY_BUFFER) if isinstance(stream, io.RawIOBase) else stream
    forward = _Forward(reader)
    with tarfile.open(fileobj=forward, mode="r:") as tar:
        for member in tar:
            if not member.isfile():
                raise FileRefused(f"{member.name!r} is not a plain file")
            path = confined(member.name)
            if path.parent not in made:
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                made.add(path.parent)
                confined.folders.pop(PurePosixPath(member.name).parts[:-1], None)  # made now: resolve again
            expected = member.pax_headers.get(SHA256_HEADER)
            offset = int(member.pax_headers.get(OFFSET_HEADER, 0) or 0) if expected else 0
            partial = partial_of(path, expected)
            digest = hashlib.sha256()
            try:
                if offset:
                    _resumed(partial, offset, member.name, digest)
                flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if offset else os.O_TRUNC)
                fd = os.open(partial, flags, 0o600)
                try:
                    forward.seek(member.offset_data)  # where tarfile left it: right after the header
                    _copy(forward, member.size, fd, digest, progress, size + offset)
                    if expected and expected != digest.hexdigest():
                        raise FileRefused(f"{member.name!r} arrived damaged (its SHA-256 differs from the "
                                          "sender's); nothing of it was kept")
                    os.fchmod(fd, member.mode & 0o777)
                    os.utime(fd, (member.mtime, member.mtime))
                finally:
                    os.close(fd)
                os.replace(partial, path)
            except FileRefused:
                partial.unlink(missing_ok=True)
                raise
            except BaseException:
                if not expected:  # nothing to resume it against
                    partial.unlink(missing_ok=True)
                raise
            files, size = files + 1, size + offset + member.size
            if arrived is not None:
                arrived[member.name] = digest.hexdigest()
    return files, size
